"""Freezes in the browser, through Django's test client: the banner on every
page, the Freezes page (admins declare and end; others read), the Django
admin, and the Approve dialog offering break-glass during a freeze.

Personas: vera (viewer), rita and sam (release managers), ada (admin).
"""

import pytest
from django.urls import reverse

from rollouts import models as m
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS
from rollouts.services.freezes import freeze_create
from tests.fleet_builders import approval_request, settle, signed_in, tutorial_waiting_at_canary

pytestmark = pytest.mark.django_db
PAGES = ["/", "/runs/", "/runs/example-run/", "/approvals/", "/placements/", "/members/", "/audit/", "/freezes/"]


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
def frozen_fleet(frozen_clock):
    tutorial_waiting_at_canary()
    freeze_create(name="xmas", reason="holidays", actor="ada")
    settle()


@pytest.mark.parametrize("url", PAGES)
def test_every_page_shows_who_froze_why_and_until_when(vera, frozen_fleet, url):
    html = vera.get(url).content.decode()
    assert 'id="freeze-banner"' in html
    assert "Frozen by ada</strong> (freeze xmas): holidays — until it is ended" in html


def test_no_banner_text_without_a_freeze(vera, frozen_clock):
    html = vera.get("/freezes/").content.decode()
    assert "Frozen by" not in html and "No freeze has been declared." in html


def test_the_banner_costs_one_query(vera, frozen_fleet, django_assert_max_num_queries):
    vera.get("/members/")
    with django_assert_max_num_queries(14) as captured:  # 12, and the nav's count of waiting gates (2)
        vera.get("/members/")
    assert sum('FROM "rollouts_freeze"' in q["sql"] for q in captured.captured_queries) == 1


def test_the_run_page_says_why_the_run_waits(vera, frozen_clock):
    from tests.fleet_builders import tutorial_fleet, tutorial_run, tutorial_strategy

    tutorial_fleet()
    tutorial_strategy()
    freeze_create(name="xmas", reason="holidays", actor="ada")
    tutorial_run()
    settle()
    html = vera.get("/runs/example-run/").content.decode()
    assert ("Frozen by ada (freeze xmas): holidays, until it is ended. In stage staging no cluster starts "
            "(those updating finish)") in html
    assert 'class="state state-frozen"' in vera.get("/runs/").content.decode()  # its state in the list


def test_an_admin_declares_and_ends_a_freeze_on_the_freezes_page(ada, frozen_clock):
    response = ada.post(reverse("rollouts:freeze-create"), {"name": "incident-42", "reason": "payments outage",
                                                            "selector": "env=prod", "time_zone": "UTC"})
    assert response.status_code == 302
    page = ada.get("/freezes/").content.decode()
    assert "incident-42" in page and "holding" in page and "End incident-42" in page
    ada.post(reverse("rollouts:freeze-end", args=["incident-42"]))
    freeze = m.Freeze.objects.get(name="incident-42")
    assert freeze.ended_by == "ada"
    assert list(m.Event.objects.filter(object_kind="Freeze").values_list("reason", "details__via")) == [
        ("FreezeDeclared", "web"), ("FreezeEnded", "web")]


def test_a_bad_field_is_named_on_the_form(ada, frozen_clock):
    response = ada.post(reverse("rollouts:freeze-create"), {"name": "weekends", "reason": "no deploys",
                                                            "windows": "Sat 00:00-Mon 06:00", "time_zone": "Berlin"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "time_zone: &#x27;Berlin&#x27; is not an IANA time zone" in html
    assert 'value="weekends"' in html  # what was typed stays
    assert not m.Freeze.objects.exists()


def test_a_viewer_reads_the_freezes_page_but_may_not_declare(vera, frozen_fleet):
    page = vera.get("/freezes/").content.decode()
    assert "xmas" in page and "Declare a freeze" not in page and "End xmas" not in page
    assert vera.post(reverse("rollouts:freeze-create"), {"name": "x", "reason": "y"}).status_code == 403
    assert vera.post(reverse("rollouts:freeze-end", args=["xmas"])).status_code == 403
    assert m.Freeze.objects.get(name="xmas").ended_at is None


@pytest.mark.parametrize("allowed", [False, True])
def test_release_managers_declare_freezes_only_when_the_setting_allows(rita, frozen_clock, settings, allowed):
    settings.FLEET_FREEZE_BY_RELEASE_MANAGERS = allowed
    response = rita.post(reverse("rollouts:freeze-create"), {"name": "hotfix-window", "reason": "x"})
    assert response.status_code == (302 if allowed else 403)
    assert m.Freeze.objects.filter(name="hotfix-window").exists() == allowed


def test_the_django_admin_declares_and_ends_through_the_service(ada, frozen_clock):
    response = ada.post(reverse("admin:rollouts_freeze_add"), {
        "name": "xmas", "reason": "holidays", "starts_at_0": "", "starts_at_1": "", "ends_at_0": "", "ends_at_1": "",
        "windows": "", "time_zone": "UTC", "selector": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    freeze = m.Freeze.objects.get(name="xmas")
    assert freeze.active and freeze.declared_by == "ada"
    ada.post(reverse("admin:rollouts_freeze_changelist"), {"action": "end_freezes", "_selected_action": [freeze.pk]})
    assert list(m.Event.objects.filter(object_kind="Freeze").values_list("reason", "details__via")) == [
        ("FreezeDeclared", "admin"), ("FreezeEnded", "admin")]


def test_the_django_admin_names_a_bad_field(ada, frozen_clock):
    response = ada.post(reverse("admin:rollouts_freeze_add"), {
        "name": "weekends", "reason": "no deploys", "windows": "weekends", "time_zone": "UTC", "selector": ""})
    assert response.status_code == 200
    assert "is not a weekly window like" in response.content.decode()


def test_the_approve_dialog_refuses_and_offers_break_glass_during_a_freeze(rita, sam, frozen_fleet):
    dialog = rita.get("/approvals/example-run-canary/", HTTP_HX_REQUEST="true").content.decode()
    assert "Approving is refused during the freeze." in dialog and 'id="break-glass-ask"' in dialog
    assert 'class="approve">Approve</button>' not in dialog

    rita.post(reverse("rollouts:approval-break-glass", args=["example-run-canary"]), {"reason": "the fix"})
    assert "A second, different approver must confirm it." in rita.get("/approvals/example-run-canary/").content.decode()
    confirm = sam.get("/approvals/example-run-canary/").content.decode()
    assert "<strong>rita</strong> asked for a break-glass approval" in confirm and 'id="break-glass-confirm"' in confirm

    sam.post(reverse("rollouts:approval-break-glass", args=["example-run-canary"]))
    assert approval_request("example-run-canary").condition_status("Approved") == "True"


def test_approving_through_the_form_during_a_freeze_is_refused_with_the_reason(rita, frozen_fleet):
    response = rita.post(reverse("rollouts:approval-approve", args=["example-run-canary"]), follow=True)
    assert "cannot be approved during a freeze. Frozen by ada (freeze xmas)" in response.content.decode()
    assert approval_request("example-run-canary").condition_status("Approved") != "True"


def test_a_freeze_declared_or_ended_pushes_the_banner_to_the_overview(vera, frozen_clock, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    from rollouts import broadcast
    from rollouts.services.freezes import freeze_end

    pushed = []
    monkeypatch.setattr(broadcast, "push", pushed.append)
    with django_capture_on_commit_callbacks(execute=True):
        freeze_create(name="xmas", reason="holidays", actor="ada")
    assert pushed == [[("freeze-banner",), ("overview",)]]
    banner = broadcast.render_freeze_banner()
    assert 'id="freeze-banner" hx-swap-oob="true"' in banner and "Frozen by ada</strong>" in banner
    assert banner.replace(' hx-swap-oob="true"', "").strip() in vera.get("/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        freeze_end(name="xmas", actor="ada")
    assert "Frozen by" not in broadcast.render_freeze_banner()  # the banner goes away live
