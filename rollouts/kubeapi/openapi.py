"""OpenAPI v3 (placeholder until the documents are built)."""


def index(kinds) -> dict:
    return {"paths": {}}


def document(kinds, path: str):
    return None
