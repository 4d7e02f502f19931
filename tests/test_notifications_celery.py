"""Notifications in production's shape: a commit in one process queues the
sending on the `notifications` queue, one real Celery worker consuming only
that queue (the Procfile's `notify` line) posts to a receiver on loopback,
and beat's sweep sends the retry after a 500."""

import json

import pytest

from tests.notify_receivers import receiver

from .real_services import celery_hub, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.celery]


@pytest.mark.soak  # most of it is the retry backoff (5-10 s): it waits beside the in-process tests
def test_a_notifications_worker_delivers_and_beats_sweep_retries_after_a_500(tmp_path):
    with receiver("flaky", failures=1) as hook, celery_hub(tmp_path, FLEET_NOTIFY_TIMEOUT_SECONDS="2") as hub:
        hub.shell(
            "from rollouts.services.notifications import subscription_create\n"
            f"subscription_create(name='ci', channel='webhook', target={hook.url!r}, actor='ada')\n")
        hub.start("worker", "-Q", "notifications", "--concurrency", "2", "-n", "notify@%h", "--without-gossip",
                  "--without-mingle", "--loglevel", "WARNING", name="notify")
        # A write in another process that exits at once: its commit queues the events for the
        # hand-off thread, which hands them to the notifications queue at exit at the latest.
        hub.shell("from rollouts import changes\nchanges.publish(changes.FreezeChanged('holidays', True))\n")
        [first] = hook.wait_for(1, timeout=60)
        assert json.loads(first["body"])["type"] == "freeze-started"
        wait_for(lambda: hub.sql("SELECT attempts, last_error FROM rollouts_delivery") == [(1, "HTTP 500")],
                 timeout=30, what="the failed attempt to be recorded")

        hub.beat()  # the sweep sends what is due once the backoff (5-10 s) has passed
        requests_ = hook.wait_for(2, timeout=90)
        wait_for(lambda: hub.sql("SELECT status, attempts FROM rollouts_delivery") == [("delivered", 2)],
                 timeout=30, what="the retry to be recorded")
    assert len(requests_) == 2
    assert requests_[0]["headers"]["X-Fleet-Delivery"] == requests_[1]["headers"]["X-Fleet-Delivery"]
