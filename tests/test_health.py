"""/healthz and /readyz, and the banner that tells admins background work stopped.

Production mode (REDIS_URL set) needs the database, Redis, a fresh beat
heartbeat and a worker seen recently; the embedded mode the database and
the engine loop's heartbeat. Heartbeats are written as the processes write
them (rollouts.services.health) under the frozen hub clock.
"""

import json

import pytest
from django.db import OperationalError

from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS
from rollouts.services.health import heartbeat_record
from tests import fleet_builders as fb
from tests.real_services import RedisServer

pytestmark = pytest.mark.django_db

Source = m.Heartbeat.Source


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def production(settings, redis_server):
    """Production mode against a Redis of the test's own."""
    settings.REDIS_URL = redis_server.url
    return redis_server


def beats(*sources, ago: float = 0):
    """Heartbeats of `sources`, `ago` seconds before now on the frozen clock."""
    from rollouts import clock

    clock.advance(-ago)
    for source in sources:
        heartbeat_record(source=source, by="w1@host" if source == Source.WORKER else "")
    clock.advance(ago)


def readyz(client, **extra):
    response = client.get("/readyz", **extra)
    return response.status_code, json.loads(response.content)


def test_healthz_answers_alive_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, json.loads(response.content)) == (200, {"status": "alive"})
    assert response["Cache-Control"] == "no-store"


def test_probes_answer_a_kubelet_asking_for_the_pod_ip_over_plain_http(client, settings, frozen_clock):
    """Not in ALLOWED_HOSTS, and HTTPS redirects on: probes still answer."""
    settings.SECURE_SSL_REDIRECT = True
    beats(Source.ENGINE)
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert readyz(client, HTTP_HOST="10.1.2.3:8000")[0] == 200
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400  # the rest is guarded


def test_probes_refuse_anything_but_get_and_head(client):
    assert client.post("/readyz").status_code == 405
    assert client.head("/healthz").status_code == 200


def test_readyz_in_the_embedded_mode_is_ready_with_a_fresh_engine_heartbeat_in_one_query(
        client, frozen_clock, django_assert_num_queries):
    beats(Source.ENGINE, ago=30)
    with django_assert_num_queries(1):  # every heartbeat, which also proves the database
        assert readyz(client) == (200, {"ready": True, "checks": {"database": "ok", "engine": "ok"}})


def test_readyz_in_the_embedded_mode_names_an_engine_never_seen(client, frozen_clock):
    assert readyz(client) == (503, {"ready": False, "failing": ["engine"],
                                    "checks": {"database": "ok", "engine": "never seen"}})


def test_readyz_names_the_database_when_it_cannot_be_read(client, frozen_clock, monkeypatch):
    def database_down(*args, **kwargs):
        raise OperationalError("connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\nmore")

    monkeypatch.setattr(m.Heartbeat.objects, "values_list", database_down)
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["database"])
    assert body["checks"] == {"database": 'connection to server at "127.0.0.1", port 5432 failed: Connection refused'}


def test_readyz_in_production_is_ready_with_redis_beat_and_a_worker(client, frozen_clock, production,
                                                                     django_assert_num_queries):
    beats(Source.BEAT, Source.WORKER, ago=5)
    with django_assert_num_queries(1):
        assert readyz(client) == (200, {"ready": True, "checks": {"database": "ok", "redis": "ok", "beat": "ok",
                                                                  "workers": "ok"}})


def test_readyz_in_production_ignores_the_embedded_engine(client, frozen_clock, production):
    beats(Source.ENGINE, Source.WORKER)
    status, body = readyz(client)
    assert (status, body["failing"], body["checks"]["beat"]) == (503, ["beat"], "never seen")
    assert "engine" not in body["checks"]


def test_readyz_names_redis_when_it_is_down(client, frozen_clock, production):
    beats(Source.BEAT, Source.WORKER)
    assert readyz(client)[0] == 200
    production.kill()
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["redis"])
    assert body["checks"]["redis"].startswith("Error 111 connecting to 127.0.0.1")


@pytest.mark.parametrize(("stale", "fresh"), [
    pytest.param(Source.BEAT, Source.WORKER, id="beat-stopped"),
    pytest.param(Source.WORKER, Source.BEAT, id="workers-gone"),
])
def test_readyz_names_a_heartbeat_older_than_the_stale_limit(client, frozen_clock, production, settings,
                                                             stale, fresh):
    settings.FLEET_HEARTBEAT_STALE_SECONDS = 60
    beats(stale, ago=75)
    beats(fresh, ago=59)
    name = {Source.BEAT: "beat", Source.WORKER: "workers"}[stale]
    assert readyz(client) == (503, {"ready": False, "failing": [name],
                                    "checks": {"database": "ok", "redis": "ok", "beat": "ok", "workers": "ok",
                                               name: "last seen 75 s ago"}})


def test_the_beat_heartbeat_task_records_the_worker_that_ran_it(frozen_clock, settings):
    from rollouts.tasks import heartbeat

    heartbeat.apply()
    row = m.Heartbeat.objects.get()
    assert (row.source, row.seen_at) == (Source.WORKER, frozen_clock.precise_now())


def test_admins_see_a_banner_when_the_workers_are_gone(frozen_clock, production):
    beats(Source.BEAT)
    beats(Source.WORKER, ago=600)
    admin = fb.signed_in("ada", ADMINS)
    banner = admin.get("/").content.decode()
    assert 'id="background-banner"' in banner
    assert "Celery workers (last seen 600 s ago): no run advances." in banner
    assert "Celery beat" not in banner


def test_the_banner_names_beat_when_beat_stopped(frozen_clock, production):
    beats(Source.WORKER)
    page = fb.signed_in("ada", ADMINS).get("/runs/").content.decode()
    assert "Celery beat (never seen): timed waits, member syncs and the safety net stop." in page


def test_release_managers_see_no_banner(frozen_clock, production):
    page = fb.signed_in("rita", RELEASE_MANAGERS).get("/").content.decode()
    assert 'id="background-banner"' not in page


def test_admins_see_no_banner_when_all_is_well_or_in_the_embedded_mode(frozen_clock, settings, production):
    beats(Source.BEAT, Source.WORKER)
    admin = fb.signed_in("ada", ADMINS)
    assert 'id="background-banner"' not in admin.get("/").content.decode()
    settings.REDIS_URL = ""
    m.Heartbeat.objects.all().delete()
    assert 'id="background-banner"' not in admin.get("/").content.decode()


def test_the_engine_loop_writes_its_heartbeat_at_most_every_heartbeat_interval(frozen_clock, settings,
                                                                              django_assert_num_queries):
    from rollouts.engine.loop import _Heartbeat

    settings.FLEET_HEARTBEAT_SECONDS = 10
    beat = _Heartbeat()
    beat.record()
    first = m.Heartbeat.objects.get(source=Source.ENGINE).seen_at
    frozen_clock.advance(9)
    with django_assert_num_queries(0):
        beat.record()
    frozen_clock.advance(1)
    beat.record()
    assert (m.Heartbeat.objects.get(source=Source.ENGINE).seen_at - first).total_seconds() == 10


def test_a_heartbeat_with_the_database_down_warns_once_per_outage(frozen_clock, monkeypatch, caplog):
    from rollouts import tasks

    def database_down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly\n\tThis probably means…")

    monkeypatch.setattr(tasks, "heartbeat_record", database_down)
    for _ in range(3):
        tasks._beat_published_heartbeat(sender=tasks.HEARTBEAT)
    monkeypatch.setattr(tasks, "heartbeat_record", heartbeat_record)
    tasks._beat_published_heartbeat(sender=tasks.HEARTBEAT)
    assert [r.getMessage() for r in caplog.records if r.name == "rollouts.tasks"] == [
        "cannot record the beat heartbeat, the database is unavailable: server closed the connection unexpectedly",
        "the beat heartbeat is recorded again: the database is back"]
    assert m.Heartbeat.objects.filter(source=Source.BEAT).exists()
