"""Fleet UI settings: one module, every knob read from the environment.

Every variable is listed with its default in `.env.example`. The embedded default
(no variables set) is SQLite under var/, the in-memory channel layer and the
engine loop in process; production sets DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

import os
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


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
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
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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
            ],
        },
    },
]

# SQLite is the embedded default. WAL and BEGIN IMMEDIATE keep concurrent writers
# (CLI, engine loop, web) from failing with "database is locked" (pitfalls.md).
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'fleetui.sqlite3'}")
# var/ holds the database, its keys' users and the engine's socket: owner-only.
private_directory(BASE_DIR / "var")  # gitignored: a fresh clone has none
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        private_sqlite_file(Path(DATABASES["default"]["NAME"]))
    DATABASES["default"]["CONN_MAX_AGE"] = 0
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

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

# One REDIS_URL feeds both the Celery broker and the channel layer.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py's default pool (100) fails handshakes in a connect storm (pitfalls.md).
            "CONFIG": {"hosts": [{"address": REDIS_URL,
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
# queue_order_strategy "priority": a worker takes from "interactive" (advances a
# person is waiting for: an approval, a new run, a state change) before "celery".
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_float("CELERY_VISIBILITY_TIMEOUT", 60.0),
    "queue_order_strategy": "priority",
}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("interactive"), Queue("celery"))  # workers consume both, interactive first
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request must not hang on a broker that is down: give up fast (the
# wake-up is a hint; beat's safety net picks the work up).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Hub sync sessions watch a KubeFleet hub for a while: their own queue and
# worker (`celery -A fleetui worker -Q hubs`) so they never hold an engine slot.
CELERY_IMPORTS = ("rollouts.tasks_k8s",)
CELERY_TASK_ROUTES = {"rollouts.tasks_k8s.hub_sync": {"queue": "hubs"}}

# Seconds between the dashboard's refreshes of live panels (until live updates push them).
FLEET_DASHBOARD_POLL_SECONDS = env_float("FLEET_DASHBOARD_POLL_SECONDS", 5.0)
# Seconds a simulated member cluster takes to apply a snapshot (0 in tests).
FLEET_SIMULATED_APPLY_SECONDS = env_float("FLEET_SIMULATED_APPLY_SECONDS", 0.0)
# Seconds between safety-net passes of the in-process engine loop.
FLEET_ENGINE_INTERVAL_SECONDS = env_float("FLEET_ENGINE_INTERVAL_SECONDS", 1.0)
# Where writers wake a `fleet engine` in another process (default var/engine.sock).
FLEET_ENGINE_SOCKET = env_str("FLEET_ENGINE_SOCKET")
# Login rate limit: after this many failed logins for one user name, or from one
# client address, within the window, further attempts are refused (docs/audit.md).
FLEET_LOGIN_MAX_FAILURES = int(env_float("FLEET_LOGIN_MAX_FAILURES", 5))
FLEET_LOGIN_WINDOW_MINUTES = env_float("FLEET_LOGIN_WINDOW_MINUTES", 15.0)

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
# Key that encrypts stored kubeconfigs (Fernet); derived from SECRET_KEY when empty.
FLEET_CREDENTIALS_KEY = env_str("FLEET_CREDENTIALS_KEY")
# Kubeconfigs with an `exec` credential plugin run a program: refused unless allowed.
FLEET_KUBECONFIG_ALLOW_EXEC = env_bool("FLEET_KUBECONFIG_ALLOW_EXEC", False)
# Seconds one hub sync session watches before handing over to the next.
FLEET_HUB_SESSION_SECONDS = env_float("FLEET_HUB_SESSION_SECONDS", 40.0)
# Longest wait between retries of a hub that cannot be reached.
FLEET_HUB_BACKOFF_MAX_SECONDS = env_float("FLEET_HUB_BACKOFF_MAX_SECONDS", 300.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
    "loggers": {"rollouts": {"level": env_str("LOG_LEVEL", "INFO")}},
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
