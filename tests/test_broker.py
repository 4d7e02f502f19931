"""fleetui.broker: the Redis transport a worker closes without dying when
Redis went away while it held unacknowledged messages and waited on BRPOP.

The close sequence is Celery's on a lost broker connection (celery 5.7,
Consumer.on_connection_error_after_connected): `Connection.collect()` closes
the channels and swallows connection errors, drops the transport's client,
and the consumer's channel is then closed a second time."""

import subprocess
import sys

import kombu
import pytest

from .real_services import ROOT, RedisServer

pytestmark = [pytest.mark.celery]

STOCK = "kombu.transport.redis:Transport"
OURS = "fleetui.broker:Transport"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


def worker_channel_holding_a_message_while_waiting(url: str, transport: str):
    """A consumer that holds one unacknowledged message and has the next
    BRPOP in flight, as a worker with a free pool slot has."""
    conn = kombu.Connection(url, transport=transport)
    queue = kombu.Queue("work")
    with conn.Producer() as producer:
        for i in range(2):
            producer.publish({"i": i}, routing_key="work", declare=[queue], serializer="json")
    held = []
    consumer = conn.Consumer(queue, callbacks=[lambda body, message: held.append(message)], accept=["json"])
    consumer.consume()
    conn.drain_events(timeout=5)
    channel = consumer.channel
    channel._brpop_start()  # what the worker's event loop does before it polls
    assert len(held) == 1 and channel._in_poll
    return conn, channel


def close_as_celery_does_on_a_lost_connection(conn, channel) -> None:
    try:
        channel.close()  # inside Connection.collect(), which swallows connection errors
    except conn.connection_errors:
        pass
    conn._do_close_transport()  # the rest of collect(): the transport's client becomes None
    channel.close()


def test_stock_kombu_redis_transport_crashes_on_the_second_close(redis_server):
    # The bug fleetui.broker works around (celery/kombu#1733, celery/celery#10242).
    # When this fails, kombu has fixed it: fleetui.broker can go.
    conn, channel = worker_channel_holding_a_message_while_waiting(redis_server.url, STOCK)
    redis_server.kill()
    with pytest.raises(AttributeError, match="hostname"):
        close_as_celery_does_on_a_lost_connection(conn, channel)


def test_our_transport_closes_cleanly_when_redis_died_under_a_pending_brpop(redis_server):
    conn, channel = worker_channel_holding_a_message_while_waiting(redis_server.url, OURS)
    redis_server.kill()
    close_as_celery_does_on_a_lost_connection(conn, channel)
    assert channel.closed


def test_our_transport_restores_what_it_held_when_redis_is_still_there(redis_server):
    conn, channel = worker_channel_holding_a_message_while_waiting(redis_server.url, OURS)
    channel.close()
    with kombu.Connection(redis_server.url, transport=OURS) as fresh:
        assert fresh.SimpleQueue("work").qsize() == 2  # the held message is back, beside the other


def test_celery_uses_our_transport_when_redis_url_is_set():
    code = "from fleetui.celery import app; print(type(app.connection_for_write().transport).__module__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:1/0", "DEBUG": "true",
                               "DJANGO_SETTINGS_MODULE": "fleetui.settings"})
    assert done.stdout.strip() == "fleetui.broker", done.stderr
