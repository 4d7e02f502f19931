"""Security headers Django does not set by itself, and static files."""

import asyncio

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.utils.cache import add_never_cache_headers
from whitenoise.middleware import WhiteNoiseMiddleware

# Pages carry no inline script or style: everything comes from static/.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
CHUNK = 64 * 1024


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """whitenoise's middleware (hashed, compressed files with long cache
    headers), streaming each file asynchronously under ASGI.

    whitenoise hands Django a file with a synchronous iterator; under daphne
    Django would read it whole in a thread and warn (a line on stderr that is
    not JSON). Under WSGI and the test client the file is served as is."""

    def serve(self, static_file, request):
        response = super().serve(static_file, request)
        if isinstance(request, ASGIRequest):
            response.streaming_content = _read_async(response.file_to_stream)
        return response


async def _read_async(file):
    """The file's bytes in chunks, each read in a thread; nothing for a body-less
    response (HEAD, 304)."""
    if file is None:
        return
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk
    finally:
        file.close()
def no_store(get_response):
    """Dashboard pages, fragments and audit exports are never kept by the
    browser or a proxy (`Cache-Control: no-store`): after a logout, Back or a
    shared machine's cache must not show them. /static/ is left cacheable."""

    def middleware(request):
        response = get_response(request)
        if not request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            add_never_cache_headers(response)
        return response

    return middleware
