"""rollouts.changes: what a writer publishes reaches every subscriber once,
after commit, and only what committed."""

import logging

import pytest
from django.db import transaction

from rollouts import changes

RUN = changes.RunChanged("ClusterStagedUpdateRun", 1, changes.Origin.PERSON)
OTHER_RUN = changes.RunChanged("ClusterStagedUpdateRun", 2, changes.Origin.ENGINE)


@pytest.fixture
def delivered(monkeypatch):
    """Each batch the subscribers were handed, instead of the real subscribers."""
    batches = []
    monkeypatch.setattr(changes, "_subscribers", [batches.append])
    return batches


def broken(events):
    raise ValueError("template exploded")


# Real commits (transactional tests): Django runs the callbacks as in production.

@pytest.mark.django_db(transaction=True)
def test_a_transactions_changes_are_delivered_once_after_it_commits_as_one_batch(delivered):
    with transaction.atomic():
        changes.publish(RUN)
        changes.publish(changes.FleetChanged())
        changes.publish(RUN)
        assert delivered == []
    assert delivered == [[RUN, changes.FleetChanged()]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_delivers_nothing(delivered):
    with pytest.raises(RuntimeError), transaction.atomic():
        changes.publish(RUN)
        raise RuntimeError("the write failed")
    with transaction.atomic():
        changes.publish(OTHER_RUN)
    assert delivered == [[OTHER_RUN]]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_takes_only_its_own_changes(delivered):
    with transaction.atomic():
        changes.publish(RUN)
        with pytest.raises(RuntimeError), transaction.atomic():
            changes.publish(OTHER_RUN)
            raise RuntimeError("one part failed")
        changes.publish(changes.ClustersBound())
    assert delivered == [[RUN, changes.ClustersBound()]]


@pytest.mark.django_db(transaction=True)
def test_a_change_published_again_after_its_savepoint_rolled_back_is_delivered(delivered):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            changes.publish(RUN)
            raise RuntimeError("one part failed")
        changes.publish(RUN)
    assert delivered == [[RUN]]


@pytest.mark.django_db(transaction=True)
def test_a_change_published_outside_a_transaction_is_delivered_at_once(delivered):
    changes.publish(RUN)
    assert delivered == [[RUN]]


@pytest.mark.django_db(transaction=True)
def test_a_failing_subscriber_fails_neither_the_write_nor_the_others(monkeypatch, caplog):
    seen = []
    monkeypatch.setattr(changes, "_subscribers", [broken, seen.append])
    with caplog.at_level(logging.WARNING, logger="rollouts.changes"), transaction.atomic():
        changes.publish(RUN)
    assert seen == [[RUN]]
    assert [r.getMessage() for r in caplog.records] == [
        "tests.test_changes.broken could not react to 1 change(s): ValueError: template exploded"]


@pytest.mark.django_db(transaction=True)
def test_subscribers_are_called_in_the_order_they_subscribed(monkeypatch):
    order = []
    monkeypatch.setattr(changes, "_subscribers", [])
    changes.subscribe(lambda events: order.append("wake"))
    push = lambda events: order.append("push")  # noqa: E731
    changes.subscribe(push)
    changes.subscribe(push)  # once per subscriber
    with transaction.atomic():
        changes.publish(RUN)
    assert order == ["wake", "push"]


# A test's captureOnCommitCallbacks runs the callbacks in place: the same batches.

@pytest.mark.django_db
def test_under_capture_on_commit_callbacks_the_batch_is_the_same(delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            changes.publish(RUN)
            changes.publish(OTHER_RUN)
    assert len(callbacks) == 2
    assert delivered == [[RUN, OTHER_RUN]]


def test_the_app_subscribes_wakeup_then_push_then_audit_seal_then_notifications():
    names = [f"{s.__module__}.{s.__qualname__}" for s in changes.subscribers()]
    assert names == ["rollouts.engine.wakeup.on_changes", "rollouts.broadcast.on_changes",
                     "rollouts.services.audit.on_changes", "rollouts.notifier.on_changes"]
