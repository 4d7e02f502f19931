"""Fleet UI settings: one module, every knob read from the environment.

Every variable is listed with its default in `.env.example`. The embedded default
(no variables set) is SQLite under var/, the in-memory channel layer and the
engine loop in process; production sets DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

import ipaddress
import os
import ssl
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name) or default
    if raw.lower() not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


def env_group_map(name: str) -> dict[str, tuple[str, ...]]:
    """`provider-group=Fleet UI group` pairs, comma-separated, e.g.
    `fleet-admins=admins,fleet-rm=release managers,sre=sre`. A provider group
    may appear twice to grant two groups. Names are kept as written (case,
    inner spaces); a provider name may contain `=` (the last one splits) but
    not a comma."""
    mapping: dict[str, tuple[str, ...]] = {}
    for number, item in enumerate(env_list(name, ""), start=1):
        provider, _, fleet = (part.strip() for part in item.rpartition("="))
        if not provider or not fleet or len(fleet) > 150:
            raise ImproperlyConfigured(
                f"{name}: item {number} {item!r} is not provider-group=Fleet UI group "
                "(e.g. fleet-admins=admins,fleet-rm=release managers; a Fleet UI group name has 1-150 characters)")
        if fleet not in mapping.get(provider, ()):
            mapping[provider] = (*mapping.get(provider, ()), fleet)
    return mapping


def credentials_key_problem(keys: str, secret_key: str) -> str:
    """Why FLEET_CREDENTIALS_KEY cannot protect stored kubeconfigs outside
    DEBUG, or "" when it can: set, long keys, the encrypting one not SECRET_KEY."""
    generate = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    listed = [key.strip() for key in keys.split(",") if key.strip()]
    if not listed:
        return (f"FLEET_CREDENTIALS_KEY must be set when DEBUG is false (a key of its own, not SECRET_KEY); "
                f"generate one with: {generate}")
    if listed[0] == secret_key:
        return f"FLEET_CREDENTIALS_KEY's first key must differ from SECRET_KEY; generate one with: {generate}"
    if any(len(key) < 32 for key in listed):
        return f"every FLEET_CREDENTIALS_KEY key must be at least 32 characters; generate one with: {generate}"
    return ""


def env_networks(name: str, default: str) -> list:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an address or network (CIDR)") from None
    return networks


def private_directory(path: Path) -> Path:
    """Create `path` readable by its owner only (0700), or tighten it."""
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o700)
    return path


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file owner-only (0600) before SQLite does
    (it would use the umask, often 0644), or tighten it; SQLite gives its
    -wal and -shm files the database file's mode."""
    if not path.parent.is_dir():
        return  # a path outside var/ that does not exist yet: SQLite will report it
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o600)


# Fail closed: DEBUG is off unless asked for (`make run` asks).
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false (DEBUG=true is for development only)")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "channels",
    "django_celery_beat",
    "rollouts",
]

MIDDLEWARE = [
    # /healthz and /readyz first: probes skip the host check, the HTTPS
    # redirect, sessions and the CSP (rollouts/views/health.py).
    "rollouts.views.health.probes",
    "django.middleware.security.SecurityMiddleware",
    # Static files (whitenoise) before anything that reads sessions or users.
    "fleetui.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "fleetui.logging.request_context",
    "rollouts.current_request.remember_request",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "rollouts.sessions.session_activity",
    "fleetui.middleware.content_security_policy",
    "fleetui.middleware.no_store",
]

ROOT_URLCONF = "fleetui.urls"
LOGIN_URL = "rollouts:login"
LOGIN_REDIRECT_URL = "/"
WSGI_APPLICATION = "fleetui.wsgi.application"
ASGI_APPLICATION = "fleetui.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rollouts.views.health.background_banner",
                "rollouts.views.freezes.freeze_banner",
                "rollouts.views.preferences.theme",
                "rollouts.views.approvals.approvals_count",
            ],
        },
    },
]

# SQLite is the embedded default. WAL and BEGIN IMMEDIATE keep concurrent writers
# (CLI, engine loop, web) from failing with "database is locked" (pitfalls.md).
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'fleetui.sqlite3'}")
# var/ holds the database, its keys' users and the engine's socket: owner-only.
private_directory(BASE_DIR / "var")  # gitignored: a fresh clone has none
# Persistent connections are checked before each request reuses them, so a
# PostgreSQL restart (or terminated backends) costs daphne no failed request.
# Celery workers keep theirs between tasks too (CELERY_DB_REUSE_MAX below).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        private_sqlite_file(Path(DATABASES["default"]["NAME"]))
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django's backend, with a writer that asks the engine loop for a gap
    # when it must wait for the write lock (fleetui/sqlite_backend/base.py).
    DATABASES["default"]["ENGINE"] = "fleetui.sqlite_backend"
    # Tests: an in-memory database, Django's default for SQLite, said outright
    # (pytest-django recognises the default only under Django's own ENGINE name).
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's full set: not like the user's name or email, at least 8 characters,
# not one of 20,000 common passwords, not all digits. They check passwords set
# through forms (the admin, password changes); `user_create` generates them.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions end after FLEET_SESSION_IDLE_MINUTES without activity: the session
# (cookie and database row) lives that long and is renewed by a person's
# requests, at most once a minute (rollouts.sessions.session_activity), not
# by a page's automatic refreshes.
FLEET_SESSION_IDLE_MINUTES = env_float("FLEET_SESSION_IDLE_MINUTES", 30.0)
SESSION_COOKIE_AGE = max(60, int(FLEET_SESSION_IDLE_MINUTES * 60))
SESSION_SAVE_EVERY_REQUEST = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# The app serves its own static files (whitenoise): `collectstatic` (the
# Procfile's release step) writes them under STATIC_ROOT with a content hash
# in each name, and gzipped; pages link the hashed names, which browsers may
# cache for a year. With DEBUG on, files are served from static/ as they are.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / env_str("STATIC_ROOT", "var/static")  # relative to the project, or absolute
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# One REDIS_URL feeds both the Celery broker and the channel layer.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default pool (100) fails handshakes in a connect storm (pitfalls.md).
            # redis-py 8 reads with a 5 s timeout by default, as long as channels-redis's idle
            # blocking pop (BZPOPMIN, 5 s): an idle socket's receive raised TimeoutError and
            # Daphne closed it (1011) every few seconds (channels_redis#422). Longer than the pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15,
                                  "max_connections": int(env_float("CHANNELS_REDIS_MAX_CONNECTIONS", 1000))}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery runs the engine only when REDIS_URL is set; without it the engine
# loop runs in process (`fleet serve`, `fleet engine`) and no task is sent.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_IGNORE_RESULT = True
# A task on a killed worker is redelivered; keep prefetching to one so a
# worker does not sit on tasks others could run.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers an unacknowledged task after this many seconds (default 1 h!).
# queue_order_strategy "priority": a worker takes from "placements" (a placement
# a person created or changed rolling out by itself: one placement's applies),
# then "interactive" (advances a person is waiting for: an approval, a new run,
# a state change), then "celery".
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_float("CELERY_VISIBILITY_TIMEOUT", 60.0),
    "queue_order_strategy": "priority",
}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("placements"), Queue("interactive"), Queue("celery"))  # workers consume all three, in order
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connections around every task
# (a new PostgreSQL session per task) unless told to reuse them: it then
# closes them every this many tasks, and fleetui/celery.py checks them
# before each task as Django does before each request (CONN_MAX_AGE,
# CONN_HEALTH_CHECKS), so a broken connection is replaced, not reused.
CELERY_DB_REUSE_MAX = int(env_float("CELERY_DB_REUSE_MAX", 1000))
# Workers and beat wait out a Redis outage of any length (Celery's default
# gives up after 100 retries, about 45 minutes, and the process exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A request must not hang on a broker that is down: give up fast (the
# wake-up is a hint; beat's safety net picks the work up).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# django-celery-beat's DatabaseScheduler, with one warning per Redis outage
# instead of a traceback per entry and tick (fleetui/beat.py).
CELERY_BEAT_SCHEDULER = "fleetui.beat:DatabaseScheduler"
if REDIS_URL:
    # kombu's Redis transport with the fix that keeps a worker alive when
    # Redis dies while it holds unacknowledged tasks (fleetui/broker.py).
    CELERY_BROKER_TRANSPORT = "fleetui.broker:Transport"
    if REDIS_URL.startswith("rediss://"):
        # Naming the transport bypasses kombu's rediss:// scheme handling:
        # say TLS here, verifying the server as channels-redis (redis-py) does.
        CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
# Hub sync sessions watch a KubeFleet hub for a while: their own queue and
# worker (`celery -A fleetui worker -Q hubs`) so they never hold an engine slot.
# Health gates ask Prometheus (up to 5 s a query): their own queue and worker
# (`celery -A fleetui worker -Q health`), never an engine slot (docs/health-gates.md).
CELERY_IMPORTS = ("rollouts.tasks_k8s", "rollouts.tasks_health")
# Member syncs unblock runs (a cluster's apply finishing lets its run go on):
# they go before the sweeps' background advances, never starved behind them.
CELERY_TASK_ROUTES = {"rollouts.tasks_k8s.hub_sync": {"queue": "hubs"},
                      "rollouts.tasks.members_sync": {"queue": "interactive"},
                      "rollouts.tasks.placement_sync": {"queue": "placements"},
                      # Notifications wait on receivers out of our hands: their own queue and
                      # worker (`celery -A fleetui worker -Q notifications`, Procfile `notify`).
                      "rollouts.tasks.notifications_record": {"queue": "notifications"},
                      "rollouts.tasks.notifications_send": {"queue": "notifications"},
                      "rollouts.tasks.notifications_send_due": {"queue": "notifications"},
                      "rollouts.tasks_health.health_gate_check": {"queue": "health"}}


# Notifications (docs/notifications.md). FLEET_BASE_URL: where people reach
# the dashboard, for the deep links in messages (no trailing slash needed).
FLEET_BASE_URL = env_str("FLEET_BASE_URL", "http://127.0.0.1:8000")

# The Kubernetes-compatible API (docs/kube-api.md): the https URL written into
# downloaded kubeconfigs (default: the address a request came in on), the CA
# certificate to embed (the embedded mode's self-signed one), and whether to
# write insecure-skip-tls-verify instead (only for a documented self-signed setup).
FLEET_API_URL = env_str("FLEET_API_URL", "")
FLEET_API_CA_FILE = env_str("FLEET_API_CA_FILE", "")
FLEET_API_INSECURE_SKIP_TLS_VERIFY = env_bool("FLEET_API_INSECURE_SKIP_TLS_VERIFY", False)
FLEET_NOTIFY_TIMEOUT_SECONDS = env_float("FLEET_NOTIFY_TIMEOUT_SECONDS", 5.0)  # connect, then read
FLEET_NOTIFY_RETRY_HOURS = env_float("FLEET_NOTIFY_RETRY_HOURS", 24.0)  # temporary failures retried this long
FLEET_NOTIFY_POLL_SECONDS = env_float("FLEET_NOTIFY_POLL_SECONDS", 2.0)  # embedded sender's look at the table
FLEET_NOTIFY_SENDERS = int(env_float("FLEET_NOTIFY_SENDERS", 4))  # embedded mode: messages sent at once
# Email: SMTP when EMAIL_HOST is set, else the console (the embedded mode's default).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                 else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = int(env_float("EMAIL_PORT", 25))
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = FLEET_NOTIFY_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Fleet UI <fleetui@localhost>")

# Seconds between the dashboard's refreshes of live panels (until live updates push them).
FLEET_DASHBOARD_POLL_SECONDS = env_float("FLEET_DASHBOARD_POLL_SECONDS", 5.0)
# Hours a failed run stays in the overview's "Needs attention".
FLEET_OVERVIEW_FAILED_RUN_HOURS = env_float("FLEET_OVERVIEW_FAILED_RUN_HOURS", 24.0)
# Seconds a simulated member cluster takes to apply a snapshot (0 in tests).
FLEET_SIMULATED_APPLY_SECONDS = env_float("FLEET_SIMULATED_APPLY_SECONDS", 0.0)
# Seconds between safety-net passes of the in-process engine loop.
FLEET_ENGINE_INTERVAL_SECONDS = env_float("FLEET_ENGINE_INTERVAL_SECONDS", 1.0)
# Seconds between looks for health gates due a check (beat, or the embedded engine's health thread).
FLEET_HEALTH_TICK_SECONDS = env_float("FLEET_HEALTH_TICK_SECONDS", 1.0)
# Seconds between beat's restarts of mirrored hubs' session chains a lost message broke.
FLEET_HUB_SYNC_SECONDS = env_float("FLEET_HUB_SYNC_SECONDS", 30.0)
# Seconds between beat's safety-net sweeps over every active run (what a lost message or a
# killed worker dropped); also how long a run's queued advance holds off another (rollouts/tasks.py).
FLEET_ACTIVE_RUNS_SWEEP_SECONDS = env_float("FLEET_ACTIVE_RUNS_SWEEP_SECONDS", 15.0)
# Where writers wake a `fleet engine` in another process (default var/engine.sock).
FLEET_ENGINE_SOCKET = env_str("FLEET_ENGINE_SOCKET")
# Login rate limit: after this many failed logins for one user name, or from one
# client address, within the window, further attempts are refused (docs/audit.md).
FLEET_LOGIN_MAX_FAILURES = int(env_float("FLEET_LOGIN_MAX_FAILURES", 5))
FLEET_LOGIN_WINDOW_MINUTES = env_float("FLEET_LOGIN_WINDOW_MINUTES", 15.0)

# Single sign-on with OpenID Connect (docs/sso.md): on when FLEET_OIDC_CLIENT_ID
# is set. mozilla-django-oidc reads the OIDC_* names below.
FLEET_OIDC_CLIENT_ID = env_str("FLEET_OIDC_CLIENT_ID")
FLEET_OIDC_ENABLED = bool(FLEET_OIDC_CLIENT_ID)
FLEET_OIDC_PROVIDER_NAME = env_str("FLEET_OIDC_PROVIDER_NAME", "single sign-on")
FLEET_OIDC_ISSUER = env_str("FLEET_OIDC_ISSUER")
FLEET_OIDC_USERNAME_CLAIM = env_str("FLEET_OIDC_USERNAME_CLAIM", "preferred_username")
FLEET_OIDC_GROUPS_CLAIM = env_str("FLEET_OIDC_GROUPS_CLAIM", "groups")
FLEET_OIDC_GROUP_MAP = env_group_map("FLEET_OIDC_GROUP_MAP")
# refuse: no mapped provider group, no sign-in; allow: signed in with no role.
FLEET_OIDC_UNMAPPED_USERS = env_choice("FLEET_OIDC_UNMAPPED_USERS", ("refuse", "allow"), "refuse")
OIDC_RP_CLIENT_ID = FLEET_OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = env_str("FLEET_OIDC_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("FLEET_OIDC_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("FLEET_OIDC_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("FLEET_OIDC_USERINFO_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("FLEET_OIDC_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("FLEET_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("FLEET_OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = env_bool("FLEET_OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_float("FLEET_OIDC_TIMEOUT_SECONDS", 10.0)
OIDC_AUTHENTICATION_CALLBACK_URL = "rollouts:oidc-callback"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"
# Password sign-in (the login form and the admin's). Off: SSO only (docs/sso.md).
FLEET_LOCAL_LOGIN = env_bool("FLEET_LOCAL_LOGIN", True)
if FLEET_OIDC_ENABLED:
    _missing = [name for name, value in (
        ("FLEET_OIDC_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET), ("FLEET_OIDC_ISSUER", FLEET_OIDC_ISSUER),
        ("FLEET_OIDC_AUTHORIZATION_ENDPOINT", OIDC_OP_AUTHORIZATION_ENDPOINT),
        ("FLEET_OIDC_TOKEN_ENDPOINT", OIDC_OP_TOKEN_ENDPOINT), ("FLEET_OIDC_USERINFO_ENDPOINT", OIDC_OP_USER_ENDPOINT),
        ("FLEET_OIDC_JWKS_ENDPOINT", OIDC_OP_JWKS_ENDPOINT if OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) else "-"),
    ) if not value]
    if _missing:
        raise ImproperlyConfigured(f"FLEET_OIDC_CLIENT_ID is set, so single sign-on needs {', '.join(_missing)}")
elif not FLEET_LOCAL_LOGIN:
    raise ImproperlyConfigured("FLEET_LOCAL_LOGIN=false needs single sign-on (FLEET_OIDC_CLIENT_ID and the other "
                               "FLEET_OIDC_* variables, docs/sso.md): otherwise no one could sign in")
AUTHENTICATION_BACKENDS = [
    *(["django.contrib.auth.backends.ModelBackend"] if FLEET_LOCAL_LOGIN else []),
    *(["rollouts.auth_backends.OIDCBackend"] if FLEET_OIDC_ENABLED else []),
]
# Health (/readyz, the admins' banner): beat sends a heartbeat task this often
# (the embedded engine loop writes one as often), and a heartbeat older than
# the second number means that process is gone.
FLEET_HEARTBEAT_SECONDS = env_float("FLEET_HEARTBEAT_SECONDS", 10.0)
FLEET_HEARTBEAT_STALE_SECONDS = env_float("FLEET_HEARTBEAT_STALE_SECONDS", 60.0)
# Freezes (docs/freezes.md): admins declare and end them; release managers too when this is on.
FLEET_FREEZE_BY_RELEASE_MANAGERS = env_bool("FLEET_FREEZE_BY_RELEASE_MANAGERS", False)
# The audit chain (docs/audit.md). Rows inserted longer ago than this and still
# unsealed are not sealed automatically; `fleet audit verify` reports them.
FLEET_AUDIT_SEAL_WITHIN_SECONDS = env_float("FLEET_AUDIT_SEAL_WITHIN_SECONDS", 60.0)
# verify reports a row timed earlier than a row before it by more than this.
FLEET_AUDIT_CLOCK_SKEW_SECONDS = env_float("FLEET_AUDIT_CLOCK_SKEW_SECONDS", 300.0)
# With a key, chain links are HMAC-SHA256 (from FLEET_AUDIT_HMAC_FROM_SEQ on):
# whoever can only write the database cannot forge a consistent chain.
FLEET_AUDIT_HMAC_KEY = env_str("FLEET_AUDIT_HMAC_KEY")
FLEET_AUDIT_HMAC_FROM_SEQ = int(env_float("FLEET_AUDIT_HMAC_FROM_SEQ", 1))

# KubeFleet hubs and Kubernetes members (docs/real-clusters.md).
# Keys that encrypt stored kubeconfigs, comma-separated: the first encrypts,
# all decrypt (rotation: docs/security.md). Required when DEBUG is false; with
# DEBUG on and none set, one is derived from SECRET_KEY.
FLEET_CREDENTIALS_KEY = env_str("FLEET_CREDENTIALS_KEY")
if not DEBUG and (problem := credentials_key_problem(FLEET_CREDENTIALS_KEY, SECRET_KEY)):
    raise ImproperlyConfigured(problem)
# Seconds one hub sync session watches before handing over to the next.
FLEET_HUB_SESSION_SECONDS = env_float("FLEET_HUB_SESSION_SECONDS", 40.0)
# Longest wait between retries of a hub that cannot be reached.
FLEET_HUB_BACKOFF_MAX_SECONDS = env_float("FLEET_HUB_BACKOFF_MAX_SECONDS", 300.0)

# Metrics (docs/metrics.md). /metrics answers a request bearing this token
# (Authorization: Bearer <token>) or coming from an address in the allowlist
# (CIDRs; default loopback only). prometheus-client reads
# PROMETHEUS_MULTIPROC_DIR itself: set, every process (daphne, each Celery
# worker) writes its values there and /metrics adds them up. It must be a
# directory of this host's own, emptied before the processes start.
FLEET_METRICS_TOKEN = env_str("FLEET_METRICS_TOKEN")
FLEET_METRICS_ALLOW = env_networks("FLEET_METRICS_ALLOW", "127.0.0.0/8,::1/128")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
else:
    # prometheus-client goes multiprocess when the variable merely exists, and
    # would then write into the current directory: empty means unset here.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# Logs go to stderr: plain text, or with LOG_FORMAT=json one JSON object per
# line carrying the request, user, task and run ids (fleetui/logging.py).
# Daphne, Celery workers and beat all log through this configuration.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING_CONFIG = "fleetui.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                   "json": {"()": "fleetui.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    "loggers": {
        "rollouts": {"level": env_str("LOG_LEVEL", "INFO")},
        # One access line per request (fleetui.logging.request_context).
        "fleetui": {"level": env_str("LOG_LEVEL", "INFO")},
        # Django's own handlers print plain text: everything goes through ours.
        "django": {"handlers": [], "level": env_str("LOG_LEVEL", "WARNING")},
        # runserver (`fleet serve`): its 4xx/5xx lines; the access line says the rest.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# Security (docs/security.md). Cookies travel over HTTPS only unless DEBUG is
# on (`make run` serves http://127.0.0.1). Redirecting to HTTPS, HSTS and
# trusting a proxy's X-Forwarded-Proto depend on how the site is served, so
# they are off until set. The CSP is fleetui.middleware's.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(env_float("SECURE_HSTS_SECONDS", 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL", False):  # only behind a proxy that sets the header itself
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
