"""Health for load balancers and Kubernetes probes, and the admins' banner.

    GET /healthz  200 {"status": "alive"}: the process answers; nothing else
                  is touched (a liveness probe must not fail because the
                  database does)
    GET /readyz   200 {"ready": true, "checks": {...}}, or 503 naming the
                  failing checks (rollouts.selectors.health)

The probes are answered by `probes`, the first middleware: before the host
check (a kubelet asks for the pod's IP), the HTTPS redirect (probes come over
plain http inside the cluster), sessions, authentication and the CSP. They
reveal only which parts are up.
"""

from django.http import HttpResponseNotAllowed, JsonResponse

from rollouts import roles
from rollouts.selectors import health


def healthz(request) -> JsonResponse:
    return _no_store(JsonResponse({"status": "alive"}))


def readyz(request) -> JsonResponse:
    readiness = health.readiness()
    body = {"ready": readiness.ready,
            "checks": {check.name: "ok" if check.ok else (check.detail or "failing") for check in readiness.checks}}
    if not readiness.ready:
        body["failing"] = readiness.failing
    return _no_store(JsonResponse(body, status=200 if readiness.ready else 503))


PROBES = {"/healthz": healthz, "/readyz": readyz}


def probes(get_response):
    """Middleware, first in MIDDLEWARE: /healthz and /readyz, and nothing else."""

    def middleware(request):
        view = PROBES.get(request.path_info)
        if view is None:
            return get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request)

    return middleware


def background_banner(request) -> dict:
    """Context processor: `background_problems`, the background processes
    that are gone, for admins in production mode (a query only when a page
    shows it to an admin)."""

    def problems() -> list:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.has_perm(roles.ADMINISTER):
            return []
        return health.background_problems()

    return {"background_problems": problems}


def _no_store(response):
    response["Cache-Control"] = "no-store"
    # Polled every second: Django's "Service Unavailable" log line for each
    # 503 would flood the logs; the failing part is in the body.
    response._has_been_logged = True
    return response
