"""Security headers Django does not set by itself."""

# Pages carry no inline script or style: everything comes from static/.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return middleware
