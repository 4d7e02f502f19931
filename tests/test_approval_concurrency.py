"""Two sessions approve the same gate at the same instant, on real
PostgreSQL (row locks are what make it safe; SQLite would serialize the
whole database and prove nothing).

Each scenario runs in a child process against a fresh, migrated database: it builds
the tutorial's fleet waiting at canary under a policy, then two threads,
each with its own database connection, meet at a barrier and approve at
once. The child prints what happened as JSON.
"""


import pytest

from .real_services import postgres_env, shell_json

pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, sys, threading
from django.contrib.auth.models import Group
from django.db import connection
from rollouts import clock, models as m
from rollouts.api.errors import ApiError
from rollouts.roles import RELEASE_MANAGERS, user_create
from rollouts.services.approvals import approval_request_approve
from tests.conftest import TUTORIAL_START
from tests.fleet_builders import approval_request, kind, tutorial_waiting_at_canary
from tests.test_approval_policies import GATE, canary, strategy_doc

quorum, actors = int(sys.argv[1]), sys.argv[2].split(",")
sre = Group.objects.create(name="sre")
for name in {"olivia", *actors}:
    user_create(username=name, role=RELEASE_MANAGERS)[0].groups.add(sre)
with clock.frozen(TUTORIAL_START):
    tutorial_waiting_at_canary(strategy_doc(canary({"quorum": quorum, "groups": ["sre"]})))
# resourceVersion is hub-wide (a losing writer may burn a value): count the
# request's row writes themselves.
from rollouts.api import store
written, rows_update_versioned = [], store.rows_update_versioned

def counting_rows_update(model, objs, *args, **kwargs):
    versions = rows_update_versioned(model, objs, *args, **kwargs)
    if model is m.ClusterApprovalRequest:
        written.append(len(versions))
    return versions

store.rows_update_versioned = counting_rows_update
barrier, outcomes = threading.Barrier(len(actors)), []

def approve(actor):
    try:
        barrier.wait()
        _, changed = approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor=actor, via="web")
        outcomes.append([actor, "changed" if changed else "unchanged"])
    except ApiError as exc:
        outcomes.append([actor, type(exc).__name__])
    finally:
        connection.close()

threads = [threading.Thread(target=approve, args=(a,)) for a in actors]
for t in threads: t.start()
for t in threads: t.join()
request = approval_request(GATE)
events = list(m.Event.objects.filter(object_name=GATE, action__in=["approved", "denied"])
              .order_by("id").values_list("action", "reason"))
print(json.dumps({
    "outcomes": sorted(outcomes), "approved": request.condition_status("Approved"),
    "writes": sum(written), "votes": m.ApprovalVote.objects.count(), "events": events,
}))
"""


@pytest.fixture
def database():
    with postgres_env() as env:
        yield env


def race(env: dict, *, quorum: int, actors: list[str]) -> dict:
    return shell_json(env, SCRIPT, ["race", str(quorum), ",".join(actors)])


def test_two_people_approving_at_once_make_one_transition_and_one_event(database):
    result = race(database, quorum=1, actors=["alice", "bob"])
    assert result["approved"] == "True"
    assert sorted(o for _, o in result["outcomes"]) == ["changed", "unchanged"]
    assert result["writes"] == 1, "Approved=True was written once"
    assert result["votes"] == 1
    assert result["events"] == [["approved", "ClusterApprovalRequestApproved"]]


def test_one_person_approving_from_two_sessions_at_once_votes_once(database):
    result = race(database, quorum=2, actors=["alice", "alice"])
    assert sorted(o for _, o in result["outcomes"]) == ["PolicyDenied", "changed"]
    assert result["approved"] == "" and result["votes"] == 1 and result["writes"] == 0
    assert result["events"] == [["approved", "ApprovalVoteRecorded"], ["denied", "PolicyDenied"]]


def test_the_last_two_votes_of_a_quorum_arriving_at_once_open_the_gate_once(database):
    result = race(database, quorum=2, actors=["alice", "bob"])
    assert result["approved"] == "True" and result["writes"] == 1 and result["votes"] == 2
    assert result["events"] == [["approved", "ApprovalVoteRecorded"], ["approved", "ClusterApprovalRequestApproved"]]
