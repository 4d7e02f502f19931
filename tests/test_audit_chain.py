"""The audit log you can trust (SQLite): every append is sealed into a hash
chain after commit, the application cannot change or remove a row, and
`fleet audit verify` reports the first broken link after tampering.
PostgreSQL's trigger and concurrent writers: test_audit_postgres.py."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from rollouts import changes, tasks
from rollouts import models as m
from rollouts.engine.loop import engine_tick
from rollouts.services import audit
from rollouts.services.events import record

from . import fleet_builders as fb

pytestmark = pytest.mark.django_db


def append(count: int, *, actor: str = "olivia") -> list[m.Event]:
    return [record(actor=actor, action=m.Event.Action.PATCHED, kind_name="ConfigMap", name=f"cm-{i}",
                   details={"n": i, "note": "ünïcode"}) for i in range(count)]


def raw(sql: str, *params) -> None:
    """Tamper as someone with the database file would: plain SQL."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def chain() -> list[tuple]:
    return list(m.Event.objects.order_by("seq").values_list("id", "seq", "prev_hash", "hash"))


@pytest.fixture
def engine_timeline(frozen_clock):
    """A tutorial run driven by the engine up to its canary approval: rows
    from fleet apply (services), the engine's bulk appends and an approval."""
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.settle()
    fb.advance(60)
    fb.settle()
    fb.approve("example-run-canary")
    fb.settle()


def test_appends_from_every_writer_form_one_chain_in_id_order(engine_timeline):
    append(3, actor="alice")
    sealed = audit.audit_seal()
    rows = chain()
    assert sealed == len(rows) > 20
    assert [seq for _id, seq, _p, _h in rows] == list(range(1, len(rows) + 1))
    assert [pk for pk, *_ in rows] == sorted(pk for pk, *_ in rows)
    assert rows[0][2] == audit.GENESIS
    assert all(row[2] == before[3] for before, row in zip(rows, rows[1:], strict=False))
    assert {"olivia", "alice", "system:engine"} <= set(m.Event.objects.values_list("actor", flat=True))


def test_a_transaction_schedules_one_seal_after_commit_however_many_rows(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            append(5)
            m.Event.objects.bulk_create([m.Event(time=datetime.now(UTC), actor="system:engine", action="condition",
                                                 object_kind="ClusterStagedUpdateRun", object_name="r")])
    assert [c.event for c in callbacks] == [changes.AuditAppended("default")]  # the audit chain's one seal
    assert not m.Event.objects.filter(seq__isnull=True).exists()


def test_sealing_costs_the_same_queries_for_5_or_150_new_rows():
    def seal_queries(count: int) -> int:
        append(count)
        with CaptureQueriesContext(connection) as queries:
            assert audit.audit_seal() == count
        return len(queries)

    # savepoint, the unsealed rows, the chain head, one UPDATE, release
    assert seal_queries(5) == seal_queries(150) == 5


def test_a_seal_with_nothing_new_reads_once():
    append(2)
    audit.audit_seal()
    with CaptureQueriesContext(connection) as queries:
        assert audit.audit_seal() == 0
    assert len(queries) == 3  # savepoint, the unsealed rows (none), release


def test_sealing_more_than_a_batch_continues_the_chain(settings, monkeypatch):
    monkeypatch.setattr(audit, "SEAL_BATCH", 7)
    append(20)
    assert audit.audit_seal() == 20
    assert [seq for _i, seq, *_ in chain()] == list(range(1, 21))
    assert audit.audit_verify().intact


def test_the_canonical_form_ignores_key_order_and_time_zone():
    row = {"id": 1, "time": datetime(2026, 3, 2, 21, 27, tzinfo=UTC), "actor": "a", "action": "patched",
           "object_kind": "K", "object_namespace": "", "object_name": "n", "run": "", "reason": "",
           "message": "", "details": {"b": 1, "a": [1, {"y": 2, "x": 1}]}}
    same = {**row, "time": row["time"].astimezone(timezone(timedelta(hours=2))),
            "details": {"a": [1, {"x": 1, "y": 2}], "b": 1}}
    assert audit.canonical(row, 1) == audit.canonical(same, 1)
    assert '"time":"2026-03-02T21:27:00.000000Z"' in audit.canonical(row, 1)
    assert audit.link_hash(audit.GENESIS, row, 1) != audit.link_hash(audit.GENESIS, row, 2)


def test_verify_passes_on_an_intact_log(fleet, engine_timeline):
    result = fleet("audit", "verify")
    count = m.Event.objects.count()
    head = m.Event.objects.order_by("-seq").values_list("hash", flat=True).first()
    assert result == (0, f"audit log intact: {count} events, head {head}\n", "")


def test_verify_of_an_empty_log_is_intact(fleet):
    assert fleet("audit", "verify") == (0, f"audit log intact: 0 events, head {audit.GENESIS}\n", "")


def test_verify_reads_the_chain_in_bounded_chunks():
    append(25)
    with CaptureQueriesContext(connection) as queries:
        verdict = audit.audit_verify(chunk=10)
    assert (verdict.intact, verdict.count) == (True, 25)
    reads = [q for q in queries if 'WHERE "rollouts_event"."seq" >' in q["sql"]]
    assert len(reads) == 3 and all("LIMIT 10" in q["sql"] for q in reads)


def test_a_changed_row_is_reported_as_the_first_broken_link(fleet):
    events = append(6)
    audit.audit_seal()
    raw("UPDATE rollouts_event SET message = 'nothing to see' WHERE id = %s", events[3].pk)
    raw("UPDATE rollouts_event SET actor = 'mallory' WHERE id = %s", events[4].pk)
    code, out, err = fleet("audit", "verify")
    assert (code, out) == (1, "")
    assert err.startswith(f"audit log broken at seq 4 (event id {events[3].pk}): content changed")
    assert "the 3 events before it are intact" in err


def test_a_deleted_row_is_reported_as_a_gap(fleet):
    events = append(5)
    audit.audit_seal()
    raw("DELETE FROM rollouts_event WHERE id = %s", events[1].pk)
    code, _out, err = fleet("audit", "verify")
    assert code == 1
    assert f"broken at seq 2 (event id {events[2].pk}): row missing: seq 2 is gone" in err


def test_a_row_rewritten_with_a_fresh_hash_breaks_the_next_link():
    events = append(4)
    audit.audit_seal()
    row = m.Event.objects.filter(pk=events[1].pk).values(*audit.AUDITED_FIELDS).get()
    forged = {**row, "message": "forged"}
    prev = m.Event.objects.get(pk=events[0].pk).hash
    raw("UPDATE rollouts_event SET message = 'forged', hash = %s WHERE id = %s",
        audit.link_hash(prev, forged, 2), events[1].pk)
    verdict = audit.audit_verify()
    assert (verdict.seq, verdict.id, verdict.count) == (3, events[2].pk, 2)
    assert verdict.broken.startswith("prev link wrong")


def test_a_row_taken_out_of_the_chain_is_resealed_at_the_end_and_leaves_a_gap():
    events = append(4)
    audit.audit_seal()
    raw("UPDATE rollouts_event SET seq = NULL, prev_hash = NULL, hash = NULL WHERE id = %s", events[1].pk)
    verdict = audit.audit_verify()
    assert (verdict.seq, verdict.broken.split(":")[0]) == (2, "row missing")


def test_the_application_cannot_update_or_delete_an_event():
    event = append(1)[0]
    event.message = "rewritten"
    with pytest.raises(m.AppendOnlyError):
        event.save()
    with pytest.raises(m.AppendOnlyError):
        event.delete()
    with pytest.raises(m.AppendOnlyError):
        m.Event.objects.filter(pk=event.pk).update(message="rewritten")
    with pytest.raises(m.AppendOnlyError):
        m.Event.objects.update(message="rewritten")
    with pytest.raises(m.AppendOnlyError):
        m.Event.objects.all().delete()
    with pytest.raises(m.AppendOnlyError):
        m.Event.objects.bulk_update([event], ["message"])
    assert m.Event.objects.get(pk=event.pk).message == ""


def test_the_admin_offers_no_change_or_delete_of_events(rf, admin_user, admin_client):
    event = append(1)[0]
    request = rf.get("/")
    request.user = admin_user
    event_admin = admin.site._registry[m.Event]
    assert not event_admin.has_change_permission(request, event)
    assert not event_admin.has_delete_permission(request, event)
    assert "delete_selected" not in event_admin.get_actions(request)


# Rows left unsealed, time going backwards, a keyed chain -------------------------------------------


def slipped_in(minutes_ago: float, **fields) -> m.Event:
    """A row inserted as by SQL outside the application `minutes_ago`, never sealed."""
    values = {"time": datetime.now(UTC), "actor": "mallory", "action": "approved", "object_kind": "ConfigMap",
              "object_name": "backdated", **fields}
    return m.Event.objects.create(recorded=datetime.now(UTC) - timedelta(minutes=minutes_ago), **values)


def test_verify_reports_rows_left_unsealed_too_long_and_does_not_seal_them(fleet):
    append(3)
    audit.audit_seal()
    stale = slipped_in(5)
    code, out, err = fleet("audit", "verify")
    assert code == 1
    assert out.startswith("audit log chain intact: 3 events")
    assert f"1 events left unsealed for more than 60 s, not sealed (event ids {stale.pk})" in err
    assert m.Event.objects.get(pk=stale.pk).seq is None


def test_the_seal_after_each_append_leaves_old_unsealed_rows_alone():
    stale = slipped_in(2)
    append(2)
    assert audit.audit_seal() == 2
    assert m.Event.objects.get(pk=stale.pk).seq is None


def test_recent_unsealed_rows_are_still_sealed_by_verify(fleet):
    append(2)  # their seal runs after a commit that never comes in this test
    assert fleet("audit", "verify").code == 0
    assert not m.Event.objects.filter(seq__isnull=True).exists()


def test_a_person_seals_stale_rows_on_purpose(fleet):
    append(1)
    slipped_in(5)
    assert fleet("audit", "seal").code == 2
    assert fleet("audit", "seal", "--stale") == (0, "sealed 2 events\n", "")
    assert fleet("audit", "verify").code == 0


def test_verify_reports_time_going_backwards_beyond_the_skew(fleet, settings):
    now = datetime.now(UTC)
    record(actor="olivia", action=m.Event.Action.PATCHED, kind_name="ConfigMap", name="a", time=now)
    record(actor="olivia", action=m.Event.Action.PATCHED, kind_name="ConfigMap", name="b",
           time=now - timedelta(seconds=100))  # within the 300 s skew
    late = record(actor="mallory", action=m.Event.Action.APPROVED, kind_name="ConfigMap", name="c",
                  time=now - timedelta(hours=2))
    record(actor="hub:prod", action=m.Event.Action.CONDITION, kind_name="ClusterStagedUpdateRun", name="r",
           time=now - timedelta(days=3), details={"hub": "prod"})  # a hub's own condition time
    code, out, err = fleet("audit", "verify")
    assert code == 1 and out.startswith("audit log chain intact: 4 events")
    assert err.splitlines() == [f"time goes backwards: seq 3 (event id {late.pk}) is timed "
                                f"{(now - timedelta(hours=2)):%Y-%m-%dT%H:%M:%SZ}, 7200 s before seq 1 "
                                f"({now:%Y-%m-%dT%H:%M:%SZ})"]


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(settings):
    settings.FLEET_AUDIT_HMAC_KEY = "k" * 64
    events = append(3)
    audit.audit_seal()
    assert audit.audit_verify().intact
    row = m.Event.objects.filter(pk=events[1].pk).values(*audit.AUDITED_FIELDS).get()
    forged = {**row, "message": "forged"}
    prev = m.Event.objects.get(pk=events[0].pk).hash
    unkeyed = __import__("hashlib").sha256((prev + audit.canonical(forged, 2)).encode()).hexdigest()
    raw("UPDATE rollouts_event SET message = 'forged', hash = %s WHERE id = %s", unkeyed, events[1].pk)
    verdict = audit.audit_verify()
    assert (verdict.seq, verdict.broken.split(":")[0]) == (2, "content changed")


def test_the_key_applies_from_its_seq_on_so_an_existing_log_stays_intact(settings):
    append(3)
    audit.audit_seal()
    plain_head = audit.audit_verify().head
    settings.FLEET_AUDIT_HMAC_KEY, settings.FLEET_AUDIT_HMAC_FROM_SEQ = "k" * 64, 4
    append(2)
    audit.audit_seal()
    verdict = audit.audit_verify()
    assert verdict.intact and verdict.count == 5
    assert m.Event.objects.get(seq=3).hash == plain_head
    settings.FLEET_AUDIT_HMAC_KEY = "another-key"
    assert audit.audit_verify().seq == 4, "links from seq 4 on need the key"


# One seal per engine tick (seals_deferred) -----------------------------------------------------------


def unsealed() -> int:
    return m.Event.objects.filter(seq__isnull=True).count()


@pytest.fixture
def seals(monkeypatch):
    """How many times the chain was sealed (audit_seal calls)."""
    calls = []
    real = audit.audit_seal
    monkeypatch.setattr(audit, "audit_seal", lambda **kw: calls.append(kw) or real(**kw))
    return calls


def commit_appends(capture, count: int) -> None:
    with capture(execute=True), transaction.atomic():
        append(count)


def test_commits_in_a_deferred_block_are_sealed_once_on_leaving_it(django_capture_on_commit_callbacks, seals):
    with audit.seals_deferred():
        for done in (2, 4, 6):
            commit_appends(django_capture_on_commit_callbacks, 2)
            assert unsealed() == done
        with audit.seals_deferred():  # nested: the outer block seals
            commit_appends(django_capture_on_commit_callbacks, 1)
        assert unsealed() == 7 and seals == []
    assert unsealed() == 0 and len(seals) == 1
    assert audit.audit_verify().intact


def test_a_deferred_block_that_raises_still_seals_what_committed(django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), audit.seals_deferred():
        commit_appends(django_capture_on_commit_callbacks, 3)
        raise RuntimeError("the tick failed after a commit")
    assert unsealed() == 0


def test_rows_deferred_for_a_quarter_of_the_window_are_sealed_at_once(django_capture_on_commit_callbacks,
                                                                      monkeypatch, settings):
    settings.FLEET_AUDIT_SEAL_WITHIN_SECONDS = 60
    now = [1000.0]
    monkeypatch.setattr(audit.time, "monotonic", lambda: now[0])
    with audit.seals_deferred():
        commit_appends(django_capture_on_commit_callbacks, 2)
        now[0] += 14
        commit_appends(django_capture_on_commit_callbacks, 1)
        assert unsealed() == 3
        now[0] += 1  # 15 s since the first deferred commit: a long tick does not let them go stale
        commit_appends(django_capture_on_commit_callbacks, 1)
        assert unsealed() == 0
        commit_appends(django_capture_on_commit_callbacks, 1)  # deferred afresh
        assert unsealed() == 1
    assert unsealed() == 0


@pytest.mark.django_db(transaction=True)
def test_another_threads_commits_are_sealed_as_they_commit():
    with audit.seals_deferred():
        worker = threading.Thread(target=audit.on_changes, args=([changes.AuditAppended("default")],))
        append(2)
        worker.start()
        worker.join()
        assert unsealed() == 0


@pytest.mark.django_db(transaction=True)
def test_an_engine_tick_seals_once_whatever_its_commits(frozen_clock, seals):
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.tutorial_run("second-run")
    seals.clear()
    engine_tick()
    # each run's pass commits its own events
    assert set(m.Event.objects.filter(actor="system:engine").values_list("run", flat=True)) == {"example-run",
                                                                                               "second-run"}
    assert seals == [{"using": "default"}]
    assert unsealed() == 0


@pytest.mark.django_db(transaction=True)
def test_a_celery_advance_seals_once_at_the_end_of_the_task(frozen_clock, seals):
    fb.tutorial_waiting_at_canary()
    fb.approve("example-run-canary")
    before = m.Event.objects.filter(actor="system:engine").count()
    seals.clear()
    tasks.run_advance(m.ClusterStagedUpdateRun.KIND, fb.run_obj().pk)
    assert m.Event.objects.filter(actor="system:engine").count() > before
    assert seals == [{"using": "default"}]
    assert unsealed() == 0
