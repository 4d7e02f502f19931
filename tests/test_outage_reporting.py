"""rollouts.outages: one warning line per outage, saying what is down, where and why."""

import logging

import kombu.exceptions
import pytest
import redis.exceptions

from rollouts import outages


def refused(port: int = 6379) -> Exception:
    """What kombu raises when Redis refuses the connection: a chain of three."""
    try:
        try:
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except OSError as exc:
                raise redis.exceptions.ConnectionError(f"Error 111 connecting to 127.0.0.1:{port}.") from exc
        except redis.exceptions.ConnectionError as exc:
            raise kombu.exceptions.OperationalError(str(exc)) from exc
    except kombu.exceptions.OperationalError as exc:
        return exc


def test_it_logs_one_warning_per_outage_and_one_when_the_service_is_back(caplog, settings):
    settings.REDIS_URL = "redis://:secret@10.0.0.5:6380/0"
    outage = outages.Outage("Redis", outages.redis_location)
    with caplog.at_level(logging.WARNING, logger="rollouts.outages"):
        for _ in range(3):
            outage.failed(refused(), "the change is saved")
        outage.succeeded()
        outage.succeeded()
        outage.failed(refused(), "the change is saved")
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unavailable at 10.0.0.5:6380 (Connection refused): the change is saved",
        "Redis at 10.0.0.5:6380 is back",
        "Redis unavailable at 10.0.0.5:6380 (Connection refused): the change is saved",
    ]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("exc, reason", [
    pytest.param(refused(), "Connection refused", id="kombu-over-redis-over-socket"),
    pytest.param(OSError(111, "Connect call failed ('127.0.0.1', 6379)"), "Connection refused", id="asyncio-connect"),
    pytest.param(Exception("terminating connection due to administrator command\nserver closed the connection"),
                 "terminating connection due to administrator command", id="postgres-terminated"),
    pytest.param(Exception('connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                           "Connection refused\n\tIs the server running?"), "Connection refused", id="psycopg"),
    pytest.param(Exception(""), "Exception", id="no-message"),
])
def test_short_reason_is_the_last_clause_of_the_innermost_first_line(exc, reason):
    assert outages.short_reason(exc) == reason


@pytest.mark.parametrize("exc, expected", [
    pytest.param(refused(), True, id="kombu"),
    pytest.param(redis.exceptions.TimeoutError("timed out"), True, id="redis-timeout"),
    pytest.param(ValueError("a bug"), False, id="a-bug"),
])
def test_it_tells_an_unreachable_service_from_a_bug(exc, expected):
    assert outages.is_connection_error(exc) is expected


def test_database_address_names_host_and_port_or_the_sqlite_file():
    postgres = {"ENGINE": "django.db.backends.postgresql", "HOST": "db.internal", "PORT": 6432}
    assert outages.database_address(postgres) == "db.internal:6432"
    assert outages.database_address({**postgres, "HOST": "", "PORT": ""}) == "localhost:5432"
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/fleet.sqlite3"}
    assert outages.database_address(sqlite) == "/srv/fleet.sqlite3"
