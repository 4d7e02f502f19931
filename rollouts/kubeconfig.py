"""The one check every kubeconfig passes before Fleet UI keeps or uses it.

A kubeconfig is more than an address and a credential: the official client
runs programs for `users[].user.exec` and `users[].user.auth-provider`
(e.g. gcp's `cmd-path`), and reads files on this server for every path
field (`tokenFile`, `client-certificate`, `client-key`,
`certificate-authority`). An admin's kubeconfig must do neither, so only an
allowlist of fields is accepted (ALLOWED); anything else is refused with a
message naming its path. The admin form, `fleet hub add` / `fleet kubeconfig
add`, the save service and rollouts.k8s (before it builds any client, so
rows stored before this check fail plainly too) all call
`kubeconfig_parse`, which only parses: it builds no client and sends nothing.

Pure: no kubernetes client, no database. Messages never quote values.
"""

import base64
import binascii

import yaml

from rollouts.k8s_errors import PermanentK8sError


class KubeconfigRefused(PermanentK8sError):
    """The kubeconfig is not valid YAML, has a field Fleet UI does not allow,
    or does not name a usable context. `str()` names the field paths."""


# Fields accepted per section. `extensions` and `preferences` are data the
# client never reads (minikube and kubectl write them).
ALLOWED = {
    "top": {"apiVersion", "kind", "clusters", "contexts", "users", "current-context", "preferences", "extensions"},
    "cluster": {"server", "certificate-authority-data", "tls-server-name", "insecure-skip-tls-verify", "proxy-url",
                "extensions"},
    "user": {"token", "client-certificate-data", "client-key-data"},
    "context": {"cluster", "user", "namespace", "extensions"},
}
PLUGIN = "not allowed: credential plugins run programs on the Fleet UI server"
# Path fields, and the field that carries the same thing embedded.
FILE_FIELDS = {"tokenFile": "token", "client-certificate": "client-certificate-data",
               "client-key": "client-key-data", "certificate-authority": "certificate-authority-data"}
BASE64_FIELDS = {"certificate-authority-data", "client-certificate-data", "client-key-data"}
STRING_FIELDS = {"tls-server-name", "proxy-url", "namespace", "cluster", "user", "current-context", "apiVersion",
                 "kind"}
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def kubeconfig_parse(text: str, context: str = "") -> dict:
    """Parse and check a kubeconfig; return it as the dict the client is
    built from, with tokens stripped of surrounding whitespace.

    1. It must be a YAML mapping.
    2. Every field must be in ALLOWED, of the right type: plugins (`exec`,
       `auth-provider`), path fields and unknown fields are refused.
    3. `context` (else `current-context`) must name a context whose cluster
       and user are in the kubeconfig.
    Raises KubeconfigRefused listing every problem; nothing is run or read."""
    config = _load_yaml(text)
    problems = _unknown_fields(config, "top", "")
    for plural, section in SECTIONS:
        problems += _section_problems(config, plural, section)
    if problems:
        raise KubeconfigRefused("; ".join(problems))
    _check_context(config, context)
    return config


def _load_yaml(text: str) -> dict:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise KubeconfigRefused(f"the kubeconfig is not valid YAML{where}") from None
    if not isinstance(config, dict):
        raise KubeconfigRefused("the kubeconfig is not a YAML mapping")
    return config


def _section_problems(config: dict, plural: str, section: str) -> list[str]:
    """Problems of every entry of `clusters`, `users` or `contexts`."""
    entries = config.get(plural)
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [f"{plural}: must be a list"]
    problems = []
    for index, entry in enumerate(entries):
        where = f"{plural}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get(section), dict):
            problems.append(f"{where}.{section}: must be a mapping")
            continue
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            problems.append(f"{where}.name: required")
        problems += [f"{where}.{key}: not allowed" for key in entry if key not in ("name", section)]
        problems += _unknown_fields(entry[section], section, f"{where}.{section}.")
        problems += _value_problems(entry[section], f"{where}.{section}.")
    return problems


def _unknown_fields(fields: dict, section: str, prefix: str) -> list[str]:
    problems = []
    for key in fields:
        if key in ALLOWED[section]:
            continue
        if key in ("exec", "auth-provider"):
            problems.append(f"{prefix}{key}: {PLUGIN}")
        elif key in FILE_FIELDS:
            problems.append(f"{prefix}{key}: not allowed: Fleet UI reads no files on its server; "
                            f"embed the contents as {FILE_FIELDS[key]}")
        else:
            allowed = ", ".join(sorted(ALLOWED[section] - {"extensions", "preferences"}))
            problems.append(f"{prefix}{key}: not allowed (allowed here: {allowed})")
    return problems


def _value_problems(fields: dict, prefix: str) -> list[str]:
    """Type problems of one cluster, user or context; strips the token in place."""
    problems = []
    for key, value in fields.items():
        if key == "token":
            problem = _token_problem(value)
            if problem is None:
                fields["token"] = value.strip()
        elif key == "server":
            ok = isinstance(value, str) and value.startswith(("https://", "http://"))
            problem = None if ok else "must be an https:// (or http://) URL"
        elif key == "insecure-skip-tls-verify":
            problem = None if isinstance(value, bool) else "must be true or false"
        elif key in BASE64_FIELDS:
            problem = None if _is_base64(value) else "must be base64 (the file's contents, encoded)"
        elif key in STRING_FIELDS:
            problem = None if isinstance(value, str) else "must be a string"
        else:
            problem = None
        if problem:
            problems.append(f"{prefix}{key}: {problem}")
    return problems


def _token_problem(value) -> str | None:
    """Why a bearer token cannot go into an HTTP header, without showing it."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    # A token is sent as `Authorization: Bearer <token>`: a line break or any
    # other control character would break (or inject into) the header.
    if not all("\x21" <= char <= "\x7e" for char in value.strip()):
        return "must be printable ASCII without spaces, line breaks or control characters (the value is not shown)"
    return None


def _is_base64(value) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _named(config: dict, plural: str, section: str, name: str) -> dict | None:
    for entry in config.get(plural) or []:
        if entry.get("name") == name:
            return entry[section]
    return None


def _check_context(config: dict, context: str) -> None:
    """The chosen context exists and its cluster and user are in the kubeconfig."""
    name = context or config.get("current-context") or ""
    if not name:
        raise KubeconfigRefused("the kubeconfig cannot be used: it has no current-context; name a context")
    chosen = _named(config, "contexts", "context", name)
    if chosen is None:
        raise KubeconfigRefused(f'the kubeconfig cannot be used: it has no context "{name}"')
    cluster = chosen.get("cluster") or ""
    cluster_fields = _named(config, "clusters", "cluster", cluster)
    if cluster_fields is None:
        raise KubeconfigRefused(f'the kubeconfig cannot be used: context "{name}" names cluster "{cluster}", '
                                "which it does not define")
    if not cluster_fields.get("server"):
        raise KubeconfigRefused(f'the kubeconfig cannot be used: cluster "{cluster}" has no server')
    user = chosen.get("user")
    if user and _named(config, "users", "user", user) is None:
        raise KubeconfigRefused(f'the kubeconfig cannot be used: context "{name}" names user "{user}", '
                                "which it does not define")
