"""The nav's "Approvals (n)": how many gates wait for a person, on every page
and in the tab title, pushed live to every page's socket when it changes.
n is the inbox's count (selectors.approvals_pending), the same for everyone.

Personas: rita is a release manager; vera is a viewer."""

import re

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from rollouts import broadcast, selectors
from rollouts.roles import VIEWERS, user_create
from rollouts.services.approvals import approval_request_reject
from tests.fleet_builders import (
    approve,
    kind,
    set_state,
    settle,
    signed_in,
    tutorial_waiting_at_canary,
)

from .test_consumers import asynchronously, connected, drain

pytestmark = pytest.mark.django_db
GATE = "example-run-canary"


def counts() -> tuple[int, int]:
    return selectors.approvals_waiting_count(), len(selectors.approvals_pending())


def test_the_count_follows_the_inbox_through_waiting_approved_rejected_and_resumed(frozen_clock):
    assert counts() == (0, 0)
    tutorial_waiting_at_canary()
    assert counts() == (1, 1)
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="rita", reason="error rate up")
    settle()
    assert counts() == (0, 0)  # rejected, its run stopped: it waits for no one
    set_state("example-run", "Run")
    assert counts() == (1, 1)  # resumed: the gate waits again
    approve(GATE)
    assert counts() == (0, 0)


def test_the_count_costs_one_query_per_family(frozen_clock, django_assert_num_queries):
    tutorial_waiting_at_canary()
    with django_assert_num_queries(2):  # the requests of active runs, cluster-scoped, then namespaced
        assert selectors.approvals_waiting_count() == 1


def test_every_page_shows_the_count_in_the_nav_and_the_title(frozen_clock):
    tutorial_waiting_at_canary()
    client = signed_in("vera", VIEWERS)
    for url in ("/", "/runs/", "/approvals/", "/placements/", "/audit/"):
        html = client.get(url).content.decode()
        assert re.search(r'<span id="approvals-count" data-count="1" data-version="\d+"> \(1\)</span>', html), url
        assert "<title>(1) " in html, url


def test_without_a_waiting_gate_the_nav_shows_no_number():
    html = signed_in("vera", VIEWERS).get("/runs/").content.decode()
    assert re.search(r'<span id="approvals-count" data-count="0" data-version="\d+"></span>', html)
    assert "<title>Runs" in html


def test_the_count_fragment_is_out_of_band_and_versioned():
    assert re.fullmatch(r'<span id="approvals-count" data-count="2" data-version="\d+" hx-swap-oob="true"> \(2\)</span>',
                        broadcast.render_approvals_count(2))


COUNT = re.compile(r'<span id="approvals-count" data-count="(\d+)"')


@pytest.mark.django_db(transaction=True)
@asynchronously
async def test_a_page_without_its_own_socket_hears_the_count_change_when_someone_approves(frozen_clock):
    vera = await database_sync_to_async(lambda: (tutorial_waiting_at_canary(),
                                                 user_create(username="vera", role=VIEWERS)[0])[1])()
    nav, first = await connected(broadcast.NAV_SOCKET_PATH, vera)
    assert COUNT.findall(first) == ["1"]
    run = await database_sync_to_async(selectors.run_get)(name="example-run", namespace="")
    run_page, run_first = await connected(broadcast.run_socket_path(run), vera)
    assert '<section id="timeline"' in run_first and COUNT.findall(run_first) == ["1"]
    assert len(get_channel_layer().groups[broadcast.APPROVALS_GROUP]) == 2
    await database_sync_to_async(approve)(GATE, actor="rita")
    assert [COUNT.findall(p) for p in await drain(nav, counts=True)] == [["0"]]
    assert ["0"] in [COUNT.findall(p) for p in await drain(run_page, counts=True)]
    for socket in (nav, run_page):
        await socket.disconnect()
    assert broadcast.APPROVALS_GROUP not in get_channel_layer().groups


def test_a_person_without_the_viewer_role_sees_no_count(django_user_model, client):
    client.force_login(django_user_model.objects.create_user("olaf"))
    html = client.get("/accounts/login/").content.decode()
    assert "approvals-count" not in html
