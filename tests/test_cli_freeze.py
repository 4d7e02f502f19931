"""`fleet freeze create|list|end` and `fleet approve --break-glass`: the same
services as the Freezes page, the same audit events, errors naming the field
in one line."""

import pytest

from rollouts import models as m
from tests.fleet_builders import settle, tutorial_waiting_at_canary

pytestmark = pytest.mark.django_db


def test_create_list_and_end_a_freeze(fleet, frozen_clock):
    created = fleet("--as", "ada", "freeze", "create", "xmas", "--reason", "holidays", "--for", "48h",
                    "-l", "env=prod")
    assert created == (0, "freeze xmas created (holding now)\n", "")
    code, out, _ = fleet("freeze", "list")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATE", "BY", "SCOPE", "WINDOWS", "UNTIL", "REASON"]
    assert row.split() == ["xmas", "holding", "ada", "env=prod", "-", "2026-03-04T21:27:00Z", "holidays"]

    assert fleet("--as", "ada", "freeze", "end", "xmas").out == "freeze xmas ended: runs resume within one engine pass\n"
    assert fleet("freeze", "list").out == "No freezes.\n"
    assert "ended" in fleet("freeze", "list", "--all").out
    assert list(m.Event.objects.filter(object_kind="Freeze").values_list("reason", "actor", "details__via")) == [
        ("FreezeDeclared", "ada", "cli"), ("FreezeEnded", "ada", "cli")]


def test_a_recurring_freeze_lists_its_windows_and_time_zone(fleet, frozen_clock):
    fleet("freeze", "create", "weekends", "--reason", "no weekend deploys", "--windows", "sat 00:00-mon 06:00",
          "--time-zone", "Europe/Berlin")
    row = fleet("freeze", "list").out.splitlines()[1]
    assert "waiting for its window" in row and "Sat 00:00-Mon 06:00 Europe/Berlin" in row


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(["create", "xmas"], "error: reason: say why the line stops", id="no-reason"),
        pytest.param(["create", "xmas", "--reason", "x", "--until", "tomorrow"], "error: --until: 'tomorrow' is not a time",
                     id="unreadable-until"),
        pytest.param(["create", "xmas", "--reason", "x", "--for", "2 days"], "error: --for: '2 days' is not a duration",
                     id="unreadable-for"),
        pytest.param(["create", "xmas", "--reason", "x", "--windows", "weekends"], "error: windows: 'weekends' is not a",
                     id="unreadable-windows"),
        pytest.param(["create", "xmas", "--reason", "x", "--windows", "Sat 00:00-Sun 00:00", "--time-zone", "Mars"],
                     "error: time_zone: 'Mars' is not an IANA time zone", id="unknown-time-zone"),
        pytest.param(["create", "--reason", "x"], "error: freeze create needs a NAME", id="no-name"),
        pytest.param(["end", "nope"], 'Error from server (NotFound): freezes "nope" not found', id="unknown-freeze"),
    ],
)
def test_mistakes_are_one_line_naming_the_field(fleet, frozen_clock, args, message):
    code, out, err = fleet("freeze", *args)
    assert code == 1 and out == "" and err.startswith(message) and err.count("\n") == 1


def test_a_break_glass_approval_from_the_command_line_takes_two_people(fleet, frozen_clock):
    tutorial_waiting_at_canary()
    fleet("--as", "ada", "freeze", "create", "xmas", "--reason", "holidays")
    settle()
    refused = fleet("--as", "alice", "approve", "example-run-canary")
    assert refused.code == 1 and "cannot be approved during a freeze. Frozen by ada (freeze xmas)" in refused.err

    asked = fleet("--as", "alice", "approve", "example-run-canary", "--break-glass", "--reason", "hotfix")
    assert "break-glass asked by alice; a second, different approver must confirm" in asked.out
    again = fleet("--as", "alice", "approve", "example-run-canary", "--break-glass")
    assert again.code == 1 and "needs a second person" in again.err
    confirmed = fleet("--as", "bob", "approve", "example-run-canary", "--break-glass")
    assert confirmed == (0, "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary approved by "
                            "break-glass\n", "")
