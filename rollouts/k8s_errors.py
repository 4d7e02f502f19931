"""How a Kubernetes request failed, in one vocabulary (rollouts.k8s raises
these): callers decide retries without knowing HTTP, and without importing
the official client, which rollouts.k8s alone does."""


class K8sError(Exception):
    """A request that did not succeed; `str()` is one line for a person."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(" ".join(message.split()))
        self.status = status


class TemporaryK8sError(K8sError):
    """Worth retrying later: the server was unreachable, slow, overloaded or failing."""


class PermanentK8sError(K8sError):
    """The server refused; retrying the same request gets the same answer."""


class NotFoundError(PermanentK8sError):
    """404: the object (or the whole kind) does not exist."""


class GoneError(PermanentK8sError):
    """410: the resourceVersion is older than the server keeps; list again."""
