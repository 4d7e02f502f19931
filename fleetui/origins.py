"""The WebSocket origin check: a socket must be opened by a page of this very
site, scheme, host and port included.

Channels' AllowedHostsOriginValidator compares only the host name with
ALLOWED_HOSTS, so `http://localhost:9999` (any other program on the machine)
and `https://127.0.0.1` were accepted for a site served on
`http://127.0.0.1:8000`. Here the allowed origins are exactly

- the request's own origin: the scheme the socket came in on (ws -> http,
  wss -> https; `wss` also when SECURE_PROXY_SSL trusts the proxy's
  X-Forwarded-Proto: https) and its Host header, when that host is one of
  ALLOWED_HOSTS (the Host header is the client's to choose, so it only counts
  for hosts this site serves);
- and each entry of CSRF_TRUSTED_ORIGINS, compared exactly (no wildcards),
  for a site whose pages and sockets are served under different names.

A socket with no Origin, or an Origin of `null`, is refused.
"""

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin1").strip()
    return ""


def _secure(scope) -> bool:
    if scope.get("scheme") == "wss":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:  # ("HTTP_X_FORWARDED_PROTO", "https") -> the x-forwarded-proto header
        header = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode()
        return _header(scope, header).split(",")[0].strip().lower() == proxy[1]
    return False


def own_origin(scope) -> str | None:
    """`scheme://host[:port]` of the page that may open this socket, or None
    when the Host header is missing or not one of ALLOWED_HOSTS."""
    host = _header(scope, b"host").lower()
    domain, _port = split_domain_port(host)
    if not host or not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return f"{'https' if _secure(scope) else 'http'}://{host}"


def allowed_origins(scope) -> set[str]:
    """Every origin a socket with this scope may come from."""
    trusted = {origin.lower().rstrip("/") for origin in settings.CSRF_TRUSTED_ORIGINS if "*" not in origin}
    own = own_origin(scope)
    return trusted | ({own} if own else set())


def origin_allowed(scope) -> bool:
    """Whether the socket's Origin header is exactly one of allowed_origins(scope)."""
    parsed = urlparse(_header(scope, b"origin"))
    if not parsed.scheme or not parsed.netloc or parsed.path or parsed.query or parsed.fragment:
        return False
    return f"{parsed.scheme}://{parsed.netloc}".lower() in allowed_origins(scope)


class SameOriginValidator(OriginValidator):
    """Channels' OriginValidator, with the exact per-request check above
    (computed per call: one instance serves every socket)."""

    def __init__(self, application):
        super().__init__(application, allowed_origins=())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator guards WebSocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
