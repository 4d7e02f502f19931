"""The dashboard through Django's test client, with personas:

    vera   a viewer           reads everything, changes nothing
    rita   a release manager  approves, stops, resumes, rolls back
    sam    a release manager  the second approver
    ada    an admin
    an anonymous visitor and nora (signed in, no role)

The fleet is the tutorial's (tests/fleet_builders.py), driven in-process
under the frozen clock.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from rollouts import models as m
from rollouts.demo_users import demo_users_create
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS, user_create
from tests.fleet_builders import (
    advance,
    approval_request,
    approve,
    member_values,
    run_obj,
    settle,
    signed_in,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db

PAGES = ["/", "/runs/", "/runs/example-run/", "/runs/example-run/time/", "/approvals/", "/approvals/example-run-canary/", "/placements/",
         "/placements/example-placement/", "/placements/example-placement/history/",
         "/placements/example-placement/rollout/", "/strategies/", "/members/",
         "/audit/"]


@pytest.fixture
def vera():
    return signed_in("vera", VIEWERS)


@pytest.fixture
def rita():
    return signed_in("rita", RELEASE_MANAGERS)


@pytest.fixture
def sam():
    return signed_in("sam", RELEASE_MANAGERS)


@pytest.fixture
def ada():
    return signed_in("ada", ADMINS)


@pytest.fixture
def waiting_at_canary(frozen_clock):
    """The tutorial's example-run past its TimedWait, waiting at canary's approval."""
    tutorial_waiting_at_canary()
    return approval_request("example-run-canary")


def approve_url(name: str = "example-run-canary") -> str:
    return reverse("rollouts:approval-approve", args=[name])


# Logging in and roles ----------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES + ["/audit/export.csv"])
def test_every_page_sends_an_anonymous_visitor_to_the_login_page(client, waiting_at_canary, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_logs_a_person_in_and_out(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user_create(username="vera", role=VIEWERS, password="s3cret-pass")
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "vera", "password": "s3cret-pass"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_in_the_page(client):
    user_create(username="vera", role=VIEWERS, password="s3cret-pass")
    response = client.post("/accounts/login/", {"username": "vera", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


@pytest.mark.parametrize("url", PAGES)
def test_a_viewer_can_read_every_page(vera, waiting_at_canary, url):
    assert vera.get(url).status_code == 200


def test_a_signed_in_person_without_a_role_gets_403(waiting_at_canary):
    nora = signed_in("nora", None)
    response = nora.get("/runs/example-run/")
    assert response.status_code == 403
    assert b"Your role does not allow this" in response.content


def test_the_migration_creates_three_roles_with_their_permissions():
    from django.contrib.auth.models import Group

    perms = {g.name: sorted(p.codename for p in g.permissions.all()) for g in Group.objects.all()}
    assert perms == {
        "viewers": ["view_fleet"],
        "release managers": ["approve_stage", "operate_run", "view_fleet"],
        "admins": ["administer_fleet", "approve_stage", "operate_run", "view_fleet"],
    }


def test_demo_users_get_generated_passwords_that_log_in(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = demo_users_create()
    assert [(u.username, u.role) for u in users] == [
        ("admin", ADMINS), ("release-manager", RELEASE_MANAGERS), ("viewer", VIEWERS),
    ]
    assert len({u.password for u in users}) == 3 and all(len(u.password) >= 12 for u in users)
    for demo in users:
        assert client.login(username=demo.username, password=demo.password)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.has_perm("rollouts.approve_stage")
    assert demo_users_create()[0].password != users[0].password  # a second call resets them


# Approving ------------------------------------------------------------------------------


def test_a_viewer_sees_no_approve_button_and_a_forged_post_gets_403(vera, waiting_at_canary):
    page = vera.get("/runs/example-run/").content.decode()
    assert "waiting for approval" in page
    assert "Approve…" not in page and ">Stop<" not in page and "Stop…" not in page
    assert vera.post(approve_url(), {"comment": "sneaky"}).status_code == 403
    assert approval_request("example-run-canary").condition("Approved") is None
    assert not m.Event.objects.filter(action="approved").exists()


def test_a_release_manager_sees_the_approve_button_and_the_dialog(rita, waiting_at_canary):
    assert "Approve…" in rita.get("/runs/example-run/").content.decode()
    dialog = rita.get("/approvals/example-run-canary/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in dialog  # only the partial
    assert 'hx-post="/approvals/example-run-canary/approve/"' in dialog
    assert "Snapshot index" in dialog and "approving lets the run finish" in dialog


def test_a_release_manager_approves_with_a_comment(rita, waiting_at_canary):
    response = rita.post(approve_url(), {"comment": "canary healthy"}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302 and response["Location"] == "/runs/example-run/"
    approved = approval_request("example-run-canary").condition("Approved")
    assert (approved["status"], approved["message"]) == ("True", "canary healthy")
    event = m.Event.objects.get(action="approved")
    assert (event.actor, event.message, event.object_name) == ("rita", "canary healthy", "example-run-canary")
    assert event.details["comment"] == "canary healthy"
    assert event.details["client_address"] == "10.1.2.3" and event.details["via"] == "web"
    assert "example-run-canary approved." in rita.get("/runs/example-run/").content.decode()
    settle()
    assert run_obj().condition_status("Succeeded") == "True"


def test_an_approval_without_a_comment_says_who_approved(rita, waiting_at_canary):
    rita.post(approve_url())
    assert approval_request("example-run-canary").condition("Approved")["message"] == "approved by rita"
    assert m.Event.objects.get(action="approved").details["comment"] == ""


def test_a_second_approval_changes_nothing_and_says_who_approved_first(rita, sam, waiting_at_canary):
    rita.post(approve_url(), {"comment": "first"})
    before = approval_request("example-run-canary").resource_version
    response = sam.post(approve_url(), {"comment": "second"}, HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and '<section id="timeline"' in text
    assert "example-run-canary was already approved by rita at 2026-03-02 21:28:" in text
    request = approval_request("example-run-canary")
    assert request.resource_version == before and request.condition("Approved")["message"] == "first"
    assert m.Event.objects.filter(action="approved").count() == 1


def test_a_double_click_approves_once(rita, waiting_at_canary):
    for _ in range(2):
        rita.post(approve_url(), {"comment": "lgtm"}, HTTP_HX_REQUEST="true")
    assert m.Event.objects.filter(action="approved").count() == 1


def test_approving_is_post_only_and_needs_the_csrf_token(waiting_at_canary):
    user, _ = user_create(username="rita", role=RELEASE_MANAGERS)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.get(approve_url()).status_code == 405
    assert strict.post(approve_url(), {"comment": "no token"}).status_code == 403
    assert approval_request("example-run-canary").condition("Approved") is None


def test_approving_an_unknown_request_is_a_404_not_a_500(rita, waiting_at_canary):
    assert rita.post(approve_url("nope")).status_code == 404


# Stop, resume, roll back ----------------------------------------------------------------------


def test_a_release_manager_stops_and_resumes_a_run(rita, frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    response = rita.post("/runs/example-run/stop/", HTTP_HX_REQUEST="true")
    assert "Stop requested for example-run" in response.content.decode()
    assert run_obj().spec["state"] == "Stop"
    settle()
    page = rita.get("/runs/example-run/").content.decode()
    assert "stopped" in page and ">Resume<" in page
    rita.post("/runs/example-run/resume/")
    assert run_obj().spec["state"] == "Run"
    changes = m.Event.objects.filter(action="state-changed", actor="rita").order_by("id")
    assert [e.details["changes"]["spec.state"] for e in changes] == [[None, "Stop"], ["Stop", "Run"]]


def test_a_viewer_cannot_stop_a_run(vera, waiting_at_canary):
    assert vera.post("/runs/example-run/stop/").status_code == 403
    assert "state" not in run_obj().spec


def test_stopping_a_finished_run_shows_the_error_in_the_page(rita, waiting_at_canary):
    approve("example-run-canary")
    settle()
    response = rita.post("/runs/example-run/stop/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "has finished: its state can no longer change" in response.content.decode()
    response = rita.post("/runs/example-run/stop/", follow=True)
    assert "has finished" in response.content.decode()


def test_a_rollback_shows_the_diff_first_then_starts_a_run_to_the_earlier_snapshot(rita, waiting_at_canary):
    approve("example-run-canary")
    settle()
    page = rita.get("/placements/example-placement/rollout/?index=0").content.decode()
    assert "Roll back example-placement to snapshot 0" in page
    assert "<del>&quot;value2&quot;</del>" in page and "<ins>&quot;value1&quot;</ins>" in page
    response = rita.post("/placements/example-placement/rollout/", {"index": "0", "strategy": "example-strategy"})
    assert response.status_code == 302
    assert response["Location"] == "/runs/example-placement-rollback-0-1/"
    run = run_obj("example-placement-rollback-0-1")
    assert run.spec == {"placementName": "example-placement", "resourceSnapshotIndex": "0",
                        "stagedRolloutStrategyName": "example-strategy", "state": "Run"}
    assert m.Event.objects.filter(action="created", actor="rita", object_name=run.name).exists()
    settle()
    advance(61)
    settle()
    rita.post(approve_url("example-placement-rollback-0-1-canary"))
    settle()
    assert member_values() == {"member1": "value1", "member2": "value1", "member3": "value1"}


def test_a_viewer_sees_the_rollback_diff_but_cannot_start_it(vera, waiting_at_canary):
    page = vera.get("/placements/example-placement/rollout/?index=0").content.decode()
    assert "needs the release manager role" in page
    assert vera.post("/placements/example-placement/rollout/", {"index": "0"}).status_code == 403
    denied = m.Event.objects.get(action=m.Event.Action.DENIED)
    assert (denied.actor, denied.message) == ("vera", "starting a run needs the release manager role")


def test_the_overview_lists_what_happened_to_the_fleet_not_sign_ins(vera, waiting_at_canary):
    page = vera.get("/").content.decode()
    assert m.Event.objects.filter(action=m.Event.Action.LOGIN, actor="vera").exists()
    assert ">login<" not in page and "example-run" in page


def test_a_rollback_to_a_missing_snapshot_is_an_error_in_the_page(rita, waiting_at_canary):
    response = rita.post("/placements/example-placement/rollout/", {"index": "7", "strategy": "example-strategy"})
    assert response.status_code == 400
    assert "no resource snapshot with index 7" in response.content.decode()


@pytest.mark.parametrize("index", ["²", "٣", "1_0", " 1", "-1", "0x1"])
def test_a_snapshot_index_that_is_not_ascii_digits_is_a_form_error_not_a_500(vera, rita, waiting_at_canary, index):
    page = vera.get("/placements/example-placement/rollout/", {"index": index})
    assert page.status_code == 200
    assert "There is no snapshot with index" in page.content.decode()
    response = rita.post("/placements/example-placement/rollout/", {"index": index, "strategy": "example-strategy"})
    assert response.status_code == 400
    assert "index" in response.content.decode()


# What the pages say ---------------------------------------------------------------------------


def test_the_run_page_lists_stages_in_order_and_clusters_in_update_order(vera, waiting_at_canary):
    page = vera.get("/runs/example-run/").content.decode()
    assert page.index("1. staging") < page.index("2. canary") < page.index("Deletion stage")
    canary = page[page.index("2. canary"):page.index("Deletion stage")]
    assert canary.index("member3") < canary.index("member1")
    assert "3 of 3 clusters" in page and "wait 1m" in page and "elapsed" in page
    assert ("The run is waiting for approval of example-run-canary after stage canary; once done, the run "
            "moves to the deletion stage and finishes.") in page


def test_a_running_timed_wait_counts_down_from_a_data_attribute(vera, frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    advance(20)
    page = vera.get("/runs/example-run/").content.decode()
    assert 'data-countdown="39"' in page  # 60 s from the stage's wait start, 21 s ago
    assert "<script>" not in page and "onclick" not in page


def test_the_overview_shows_active_runs_and_the_inbox_oldest_first(vera, waiting_at_canary):
    tutorial_run("example-run-2", index="0")
    settle()
    advance(61)
    settle()
    page = vera.get("/").content.decode()
    assert "3 of 3 clusters" in page
    inbox = page[page.index('id="inbox"'):page.index('id="recent"')]
    assert inbox.index("example-run-canary") < inbox.index("example-run-2-canary")


def test_the_runs_list_filters_by_state_and_placement(vera, waiting_at_canary):
    approve("example-run-canary")
    settle()
    tutorial_run("example-run-2", index="0")
    settle()
    assert "example-run-2" not in vera.get("/runs/?state=succeeded").content.decode()
    assert "example-run/" in vera.get("/runs/?state=succeeded").content.decode()
    assert "example-run-2" in vera.get("/runs/?state=waiting").content.decode()
    assert "No run matches" in vera.get("/runs/?placement=other").content.decode()


def test_the_members_page_shows_labels_simulation_and_snapshots(vera, waiting_at_canary):
    page = vera.get("/members/").content.decode()
    assert "environment=canary" in page and "simulated" in page
    assert "example-placement: example-placement-1-snapshot" in page


def test_the_placement_page_diffs_any_two_snapshots(vera, waiting_at_canary):
    page = vera.get("/placements/example-placement/?a=0&b=1", HTTP_HX_REQUEST="true").content.decode()
    assert "From snapshot 0 to snapshot 1" in page and "data.key" in page
    assert "Choose two snapshots" in vera.get("/placements/example-placement/?a=0&b=9").content.decode()


def test_hostile_names_and_comments_render_escaped(rita, waiting_at_canary):
    hostile = '<script>alert("x")</script>'
    rita.post(approve_url(), {"comment": hostile})
    m.Event.objects.create(time=m.Event.objects.first().time, actor='<img src=x onerror="alert(1)">',
                           action="patched", object_kind="ConfigMap", object_name="<b>cm</b>", run="example-run")
    for url in ("/", "/runs/example-run/", "/audit/", "/approvals/example-run-canary/"):
        page = rita.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>cm</b>" not in page, url
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in rita.get("/audit/").content.decode()
