"""Real PostgreSQL, Redis and Celery processes for the tests that need them.

PostgreSQL and Redis are started on this machine before each session and in
CI. Where one is missing, the tests say how to start it: in CI (CI=true) they
fail loudly; elsewhere they are skipped with the same message.
"""

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("FLEET_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
# Migrated template databases are named by a hash of the migrations.
TEMPLATE_PREFIX = "fleetui_template_"
TEMPLATE_LOCK = 0x466C656574  # pg_advisory_lock key: "Fleet"
START_REDIS = "apt-get install -y redis-server (the tests start their own redis-server on a free port)"


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a process a test starts: this process's, with DEBUG
    off and SECRET_KEY and FLEET_CREDENTIALS_KEY set explicitly, plus `extra`.
    Under pytest the keys are the test process's own (pyproject's pytest env),
    so a process decrypts the kubeconfigs this one stored; bench/ scripts,
    which run outside pytest, get bench-only keys. A process that must serve
    plain http as `make run` does passes DEBUG="true"."""
    return {**os.environ, "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-never-used-in-production",
            "FLEET_CREDENTIALS_KEY": os.environ.get("FLEET_CREDENTIALS_KEY") or "bench-only-credentials-key-never-used",
            "DJANGO_SETTINGS_MODULE": "fleetui.settings", **extra}


def missing(what: str, how: str):
    message = f"{what} is not available: {how}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def postgres_database():
    """Create a fresh, migrated database; returns (its URL, a function that drops it).

    It is a copy of a template migrated once (see `migrated_template()`), so
    each test pays for a file copy, not for running every migration."""
    try:
        admin = psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} ({str(exc).strip()})", f"start it with `{START_POSTGRES}`")
    name = f"fleetui_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template()}"')
    # No wait for the disk at each commit: these tests are about concurrency,
    # not crash durability, and this machine's fsync dominates their time.
    # (Per-database settings are not copied from a template.)
    admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = _database_url(name)

    def drop():
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return url, drop


def _psycopg_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _database_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def migrations_fingerprint() -> str:
    """A hash of our migration files and of every installed distribution's
    version (Django's, django-celery-beat's… migrations come with them): a
    changed, added or removed migration, or an upgraded library, names a
    different template. Read without Django's app registry, so a benchmark
    can make its database before it sets Django up on it."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rollouts" / "migrations").glob("*.py")):
        digest.update(f"rollouts/{path.name}\0".encode())
        digest.update(path.read_bytes())
    for name, version in sorted({(d.metadata["Name"] or "", d.version) for d in importlib.metadata.distributions()}):
        digest.update(f"{name}=={version}\0".encode())
    return digest.hexdigest()[:16]


@functools.cache
def migrated_template() -> str:
    """The name of a database that `manage.py migrate` built, to copy with
    CREATE DATABASE … TEMPLATE; built once per set of migrations and kept
    between sessions (named `fleetui_template_<fingerprint>`).

    An advisory lock makes concurrent sessions (pytest-xdist workers, other
    checkouts on this server) build it once; it is built under a temporary
    name and renamed when complete, so an interrupted build is never used.
    It refuses connections: CREATE DATABASE … TEMPLATE fails while anyone is
    connected to the template."""
    name = TEMPLATE_PREFIX + migrations_fingerprint()
    with psycopg.connect(_psycopg_url(PG_ADMIN_URL), autocommit=True, connect_timeout=3) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK,))
        try:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                _build_template(admin, name)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (TEMPLATE_LOCK,))
    return name


def _build_template(admin, name: str) -> None:
    building = f"{name}_building"
    admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')  # left by an interrupted build
    admin.execute(f'CREATE DATABASE "{building}"')
    # DEBUG on: no production secrets needed to run migrations.
    env = {**os.environ, "DATABASE_URL": _database_url(building), "REDIS_URL": "", "DEBUG": "true",
           "DJANGO_SETTINGS_MODULE": "fleetui.settings", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        raise AssertionError(f"manage.py migrate failed on the template database: {done.stderr[-2000:]}")
    admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')


def migrated_sqlite(path: Path) -> str:
    """A migrated embedded-mode database at `path`, as a DATABASE_URL: a copy
    of a file `manage.py migrate` built once (see `migrated_sqlite_template()`),
    so a test that starts a hub from SQLite pays for a file copy, not for
    running every migration (5 s a hub; more under load)."""
    shutil.copyfile(migrated_sqlite_template(), path)
    return f"sqlite:///{path}"


@functools.cache
def migrated_sqlite_template() -> Path:
    """The SQLite twin of `migrated_template()`: a database file migrated once
    per set of migrations and kept between sessions in the temporary
    directory (named by `migrations_fingerprint()`). A file lock makes
    concurrent sessions build it once; it is built under a temporary name and
    renamed when complete, so an interrupted build is never copied."""
    folder = Path(tempfile.gettempdir()) / "fleetui-sqlite-templates"
    folder.mkdir(exist_ok=True)
    path = folder / f"{migrations_fingerprint()}.sqlite3"
    with open(folder / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            _build_sqlite_template(path)
    return path


def _build_sqlite_template(path: Path) -> None:
    building = path.with_name(f"{path.stem}-building.sqlite3")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):  # an interrupted build's
        leftover.unlink(missing_ok=True)
    # DEBUG on: no production secrets needed to run migrations.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{building}", "REDIS_URL": "", "DEBUG": "true",
           "DJANGO_SETTINGS_MODULE": "fleetui.settings", "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"manage.py migrate failed on the SQLite template: {done.stderr[-2000:]}"
    # The write-ahead log folded into the file and removed: the template is one file to copy.
    with contextlib.closing(sqlite3.connect(building)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not Path(f"{building}-wal").exists(), "the SQLite template's write-ahead log is still there"
    building.replace(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, so a test may kill and restart it."""

    def __init__(self, tmp: Path):
        self.port, self.tmp, self.proc = free_port(), tmp, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else "redis-server"
        try:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.tmp), "--maxclients", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            missing("redis-server", START_REDIS)
        wait_for(self._ping, timeout=10, what="redis-server to accept connections")
        return self

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_for(predicate, *, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Hub:
    """Runs manage.py and Celery processes against one PostgreSQL database and Redis."""

    def __init__(self, database_url: str, redis: RedisServer, tmp: Path):
        self.database_url, self.redis, self.tmp = database_url, redis, tmp
        self.env = process_env(DATABASE_URL=database_url, REDIS_URL=redis.url, CELERY_VISIBILITY_TIMEOUT="10",
                               FLEET_SIMULATED_APPLY_SECONDS="0", LOG_LEVEL="WARNING")
        self.processes: list[subprocess.Popen] = []
        self.sql_sessions = 0  # PostgreSQL sessions this test's sql() opened

    def database_sessions(self) -> int:
        """Sessions opened on the hub's database since it was made (pg_stat_database), this one's included."""
        self.sql("SELECT pg_stat_force_next_flush()")
        return self.sql("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0][0]

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed: {done.stderr[-2000:]}"
        return done.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def start(self, *celery_args: str, name: str, **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "fleetui", *celery_args], cwd=ROOT,
                                env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        return proc

    def worker(self, name: str, concurrency: int = 2) -> subprocess.Popen:
        return self.start("worker", "--concurrency", str(concurrency), "-n", f"{name}@%h", "--without-gossip",
                          "--without-mingle", "--loglevel", "WARNING", name=name)

    def daphne(self, port: int, *args: str, **env: str) -> subprocess.Popen:
        """The ASGI app on a Daphne process of its own, listening on `port`
        (`env` added to the hub's); its stdout and stderr go to daphne.out and
        daphne.err in tmp."""
        out, err = open(self.tmp / "daphne.out", "w"), open(self.tmp / "daphne.err", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *args,
                                 "fleetui.asgi:application"], cwd=ROOT, env={**self.env, **env}, stdout=out, stderr=err,
                                start_new_session=True)
        self.processes.append(proc)
        wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=30, what="daphne to listen")
        assert proc.poll() is None, f"daphne exited: {(self.tmp / 'daphne.err').read_text()[-2000:]}"
        return proc

    def beat(self, **env: str) -> subprocess.Popen:
        """Celery beat, with `env` added to the hub's (e.g. a shorter schedule)."""
        return self.start("beat", "--loglevel", "WARNING", "-s", str(self.tmp / "beat-schedule"), name="beat", **env)

    @staticmethod
    def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                self.kill(proc)

    def sql(self, query: str, *params) -> list[tuple]:
        self.sql_sessions += 1
        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://")) as conn:
            return conn.execute(query, params).fetchall()


@contextlib.contextmanager
def postgres_env(**extra: str):
    """A fresh migrated PostgreSQL database, as the environment of a process
    that uses it (process_env plus `extra`); dropped afterwards."""
    url, drop = postgres_database()
    try:
        yield process_env(DATABASE_URL=url, LOG_LEVEL="WARNING", **extra)
    finally:
        drop()


def check_on_postgresql(module: str, function: str) -> None:
    """Call `module.function()` (a check that raises AssertionError) in a
    `manage.py shell` process on a fresh migrated PostgreSQL database: the
    in-process tests run on SQLite, and vendor-specific SQL must hold on both."""
    url, drop = postgres_database()
    try:
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", f"from {module} import {function}; {function}()"],
                              cwd=ROOT, env=process_env(DATABASE_URL=url), capture_output=True, text=True, timeout=120)
    finally:
        drop()
    assert done.returncode == 0, done.stderr[-3000:]


def shell_json(env: dict, script: str, argv: list[str], *, timeout: float = 300) -> dict:
    """Run `script` in `manage.py shell` with sys.argv = argv, in a process of
    its own (so its threads have real connections); the last line it prints, as JSON."""
    code = f"import sys; sys.argv = {argv!r}\n" + script
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def celery_hub(tmp: Path, **env: str):
    """A migrated PostgreSQL database and a Redis of its own, as a Hub that
    starts Celery processes on them (`env` added to theirs); everything is
    stopped and dropped afterwards."""
    url, drop = postgres_database()
    redis = RedisServer(tmp).start()
    hub = Hub(url, redis, tmp)
    hub.env.update(env)
    try:
        yield hub
    finally:
        hub.stop_all()
        redis.kill()
        drop()
