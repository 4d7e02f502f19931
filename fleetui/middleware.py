"""Security headers Django does not set by itself."""

from django.conf import settings
from django.utils.cache import add_never_cache_headers

# Pages carry no inline script or style: everything comes from static/.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware


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
