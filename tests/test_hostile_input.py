"""Hostile input renders as text: every payload of tests/payloads.py, put into
every free-text field a page or a live fragment shows (through the services a
person or the `fleet` command uses), comes back escaped on every page, in
every live push and through a real socket, and never as an element, an
attribute or an htmx instruction.

Where the text comes from (object names are DNS names; these fields are not):
    ConfigMap data and annotations      snapshot diffs (placement, rollout, Approve dialog)
    a run's placementName and strategy  runs list, run page, the run filter
    an approval request's spec          approvals list and its page
    an approval's actor and comment     `fleet --as NAME approve --message`: run page, dialog
    a rejection's reason                the Reject form: run page, dialog, audit log
    condition reasons and messages      status writes: run and placement pages
    Event actor, reason, message, …     overview, run page, audit log
    a KubeFleet hub's name and errors   hubs page
    query parameters                    filters and forms that echo them

Personas: rita, a release manager (she sees every button); vera, a viewer
(on the sockets); pytest-django's admin_client, a superuser, in the admin."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from fleetui.asgi import application
from rollouts import broadcast, changes
from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from rollouts.selectors.timeline import ClusterView, StageView
from rollouts.services import events
from rollouts.templatetags.fleetui import cluster_map, cluster_rows
from tests.fleet_builders import (
    GROUP,
    advance,
    apply,
    approve,
    patch,
    run_obj,
    settle,
    signed_in,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
    tutorial_waiting_at_canary,
)
from tests.payloads import PAYLOADS, injected, parse, text_of
from tests.test_consumers import asynchronously

PAYLOAD_PARAMS = [pytest.param(text, id=name) for name, text in PAYLOADS.items()]
# Longest values the API (rollouts/api/validation.py), the models and the forms accept.
PLACEMENT_NAME_MAX, CONDITION_REASON_MAX, HUB_NAME_MAX, FORM_TEXT_MAX = 255, 1024, 253, 1000


def probes(payload: str) -> tuple[str, str]:
    """What a page shows of the payload: its start (long text is truncated),
    as text or as a JSON string (snapshot diffs show values as JSON)."""
    return payload[:40], json.dumps(payload, ensure_ascii=False)[1:41]


def assert_renders_as_text(html: str, payload: str, where: str, *, shown: bool = True, vocabulary: bool = True):
    problems = injected(html, vocabulary=vocabulary)
    assert problems == [], f"{where}: markup from the payload: {problems}"
    if shown:
        text = text_of(html)
        assert any(p in text for p in probes(payload)), f"{where}: the payload's text is missing"


def hostile_fleet(payload: str) -> None:
    """The tutorial's run waiting at canary, approved by `payload`, plus the
    payload in every other free-text field."""
    tutorial_waiting_at_canary()
    apply([{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "test-cm", "namespace": "test-namespace", "annotations": {"note": payload}},
            "data": {"key": payload}}])  # snapshot 2
    apply({"apiVersion": GROUP, "kind": "ClusterStagedUpdateRun", "metadata": {"name": "hostile-run"},
           "spec": {"placementName": payload[:PLACEMENT_NAME_MAX], "stagedRolloutStrategyName": payload}})
    apply({"apiVersion": GROUP, "kind": "ClusterApprovalRequest", "metadata": {"name": "hostile-request"},
           "spec": {"parentStageRollout": payload, "targetStage": payload}})
    settle()  # hostile-run fails to initialize: its placement does not exist
    hostile_condition = {"type": "Hostile", "status": "True", "reason": payload[:CONDITION_REASON_MAX],
                         "message": payload}
    for kind_name, obj in (("csur", run_obj("hostile-run")),
                           ("crp", m.ClusterResourcePlacement.objects.get(name="example-placement"))):
        conditions = [*(obj.status or {}).get("conditions", []), hostile_condition]
        patch(kind_name, obj.name, {"status": {"conditions": conditions}}, subresource="status")
    approve("example-run-canary", actor=payload, message=payload)
    # What a KubeFleet hub (or its admin) chose: its name, context, errors and warnings.
    m.HubConnection.objects.create(name=payload[:HUB_NAME_MAX], context=payload[:HUB_NAME_MAX], enabled=False,
                                   last_error=payload, warnings=[payload], failures=3)
    events.record(actor=payload, action=m.Event.Action.PATCHED, kind_name="ConfigMap", name=payload,
                  namespace="test-namespace", run="example-run", reason=payload, message=payload,
                  details={"stage": payload, "cluster": payload, "client_address": payload, "comment": payload})


# The checker itself: each payload left unescaped in the places templates put
# text must be caught. Three are harmless as markup; they catch text rendered
# twice (a template evaluated again, entities decoded twice).
UNESCAPED_CONTEXTS = ["<p>{}</p>", '<input value="{}">', "<input value='{}'>", '<a href="{}">x</a>',
                      '<section id="timeline"><textarea>{}</textarea></section>']
TEXT_EVEN_UNESCAPED = {"template-syntax", "entities", "bidi"}


@pytest.mark.parametrize("name", sorted(set(PAYLOADS) - TEXT_EVEN_UNESCAPED))
def test_the_checker_catches_each_payload_left_unescaped(name):
    assert any(injected(context.format(PAYLOADS[name])) for context in UNESCAPED_CONTEXTS)


# (url, does the page show the payload?)
PAGES = [
    ("/", True),
    ("/runs/", True),
    ("/runs/example-run/", True),
    ("/runs/hostile-run/", True),
    ("/approvals/", True),
    ("/approvals/hostile-request/", True),
    ("/approvals/example-run-canary/", True),
    ("/placements/", False),
    ("/placements/example-placement/", True),
    ("/placements/example-placement/?a=1&b=2", True),
    ("/placements/example-placement/rollout/?index=2", True),
    ("/strategies/", False),
    ("/members/", False),
    ("/audit/", True),
    ("/audit/?action=patched", True),
    ("/hubs/", True),
]
# Pages that echo query parameters back: {param: payload} is added.
ECHOING_PAGES = [
    ("/audit/", ("actor", "name", "run", "since"), True),
    ("/runs/", ("placement", "state"), True),
    ("/placements/example-placement/", ("a", "b"), False),
    ("/placements/example-placement/rollout/", ("index", "strategy"), True),
]


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
def test_every_page_and_live_fragment_shows_hostile_text_as_text(frozen_clock, payload):
    """Pages, their htmx partials, pages that echo query parameters, and
    what rollouts.broadcast pushes for every audience (one fleet per payload)."""
    hostile_fleet(payload)
    rita = signed_in("rita", RELEASE_MANAGERS)
    for url, shown in PAGES:
        for htmx in (False, True):  # the page, and the partial its htmx refresh gets
            response = rita.get(url, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
            assert response.status_code == 200, url
            assert_renders_as_text(response.content.decode(), payload, f"{url} (htmx={htmx})", shown=shown)
    for url, params, shown in ECHOING_PAGES:
        response = rita.get(url, {param: payload for param in params})
        assert response.status_code == 200, url
        assert_renders_as_text(response.content.decode(), payload, f"{url} {params}", shown=shown)
    for name in ("example-run", "hostile-run"):
        run = run_obj(name)
        for audience, html in broadcast.render_run(run.KIND, run.pk, list(broadcast.AUDIENCES)).items():
            assert_renders_as_text(html, payload, f"{name} pushed to {audience}")
    assert_renders_as_text(broadcast.render_overview(), payload, "overview push")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
def test_a_comment_approved_in_the_dialog_comes_back_as_text(frozen_clock, payload):
    tutorial_waiting_at_canary()
    rita = signed_in("rita", RELEASE_MANAGERS)
    response = rita.post("/approvals/example-run-canary/approve/", {"comment": payload}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert_renders_as_text(response.content.decode(), payload, "the approval's response", shown=False)
    for url in ("/runs/example-run/", "/approvals/example-run-canary/", "/audit/"):
        assert_renders_as_text(rita.get(url).content.decode(), payload, url)


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
def test_a_rejection_reason_comes_back_as_text(frozen_clock, payload):
    tutorial_waiting_at_canary()
    rita = signed_in("rita", RELEASE_MANAGERS)
    payload = payload[:FORM_TEXT_MAX]
    response = rita.post("/approvals/example-run-canary/reject/", {"reason": payload}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert_renders_as_text(response.content.decode(), payload, "the rejection's response", shown=False)
    for url in ("/runs/example-run/", "/approvals/example-run-canary/", "/audit/", "/"):
        assert_renders_as_text(rita.get(url).content.decode(), payload, url)


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
def test_a_refused_rollout_shows_the_hostile_strategy_and_index_as_text(frozen_clock, payload):
    tutorial_fleet()
    rita = signed_in("rita", RELEASE_MANAGERS)
    response = rita.post("/placements/example-placement/rollout/", {"strategy": payload, "index": payload})
    assert response.status_code == 400
    assert_renders_as_text(response.content.decode(), payload, "the refused rollout")


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOAD_PARAMS)
def test_the_login_page_echoes_a_hostile_next_as_text_or_drops_it(client, payload):
    """LoginView keeps `next` only when it is a URL of this site."""
    html = client.get("/accounts/login/", {"next": payload}).content.decode()
    assert_renders_as_text(html, payload, "login ?next=", shown=False)
    kept = next(dict(attrs)["value"] for tag, attrs in parse(html).elements if dict(attrs).get("name") == "next")
    assert kept in ("", payload) and not kept.startswith("javascript:")


def test_the_cluster_rows_built_in_python_escape_every_cell():
    """cluster_rows() builds the 1,000-row tables with format_html, not the template."""
    for payload in PAYLOADS.values():
        html = cluster_rows([ClusterView(payload, payload, None, None, payload, payload)])
        assert_renders_as_text(f"<table><tbody>{html}</tbody></table>", payload, "cluster_rows")


def test_the_cluster_map_cells_built_in_python_escape_every_name_and_reason():
    """cluster_map() writes a cell per cluster with format_html, names and reasons in its aria-label."""
    for payload in PAYLOADS.values():
        stage = StageView(payload, "updating", None, None, "", [ClusterView(payload, "failed", None, None, "", payload)])
        html = cluster_map(stage, 1)
        assert_renders_as_text(f"<div>{html}</div>", payload, "cluster_map", shown=False)
        assert html.count("<span") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [PAYLOADS["script"], PAYLOADS["htmx-oob"], PAYLOADS["img-onerror"]])
def test_the_admin_shows_hostile_text_as_text(frozen_clock, admin_client, payload):
    hostile_fleet(payload)
    event = m.Event.objects.filter(object_name=payload).get()
    run = run_obj("hostile-run")
    for url in ("/admin/rollouts/event/", f"/admin/rollouts/event/{event.pk}/change/",
                "/admin/rollouts/clusterstagedupdaterun/", f"/admin/rollouts/clusterstagedupdaterun/{run.pk}/change/",
                "/admin/rollouts/clusterapprovalrequest/", "/admin/rollouts/hubconnection/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_renders_as_text(response.content.decode(), payload, url, shown=False, vocabulary=False)


# Through a real socket ---------------------------------------------------------------------------


def _socket(path: str, user) -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    return WebsocketCommunicator(application, path, headers=[
        (b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())])


def _record_and_push(payload: str) -> None:
    """An event holding the payload, pushed to the run's page and the overview."""
    with transaction.atomic():
        events.record(actor=payload, action=m.Event.Action.PATCHED, kind_name="ConfigMap", name="test-cm",
                      run="example-run", reason=payload, message=payload, details={"stage": payload})
        changes.publish(changes.RunChanged.of(run_obj(), changes.Origin.PERSON))


async def _pushes(communicator) -> list[str]:
    """What the socket received until quiet, but the nav's count of waiting
    gates: a number, never anyone's text (tests/test_approvals_count.py)."""
    received = []
    while not await communicator.receive_nothing(timeout=0.3):
        received.append(await communicator.receive_from(timeout=5))
    return [push for push in received if not push.startswith('<span id="approvals-count"')]


async def _pushes_to_each(sockets) -> list[list[str]]:
    """_pushes() of every socket, waiting for them to go quiet all at once."""
    return await asyncio.gather(*(_pushes(communicator) for communicator in sockets))


@pytest.mark.django_db(transaction=True)
@asynchronously
async def test_every_payload_pushed_through_the_sockets_arrives_as_text(frozen_clock):
    await database_sync_to_async(lambda: (tutorial_fleet(), tutorial_strategy(), tutorial_run(), settle(),
                                          advance(61), settle()))()
    vera = await database_sync_to_async(lambda: user_create(username="vera", role=VIEWERS)[0])()
    run = await database_sync_to_async(run_obj)()
    sockets = [await database_sync_to_async(_socket)(path, vera)
               for path in (broadcast.run_socket_path(run), broadcast.OVERVIEW_SOCKET_PATH)]
    for communicator in sockets:
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_from(timeout=5)
    comment = PAYLOADS["htmx-oob"]
    await database_sync_to_async(approve)("example-run-canary", actor=comment, message=comment)
    for received in await _pushes_to_each(sockets):
        assert received, "the approval was not pushed"
        for push in received:
            assert_renders_as_text(push, comment, "the approval's push")
    for name, payload in PAYLOADS.items():
        await database_sync_to_async(_record_and_push)(payload)
        for received in await _pushes_to_each(sockets):
            assert received, f"{name}: nothing was pushed"
            for push in received:
                assert_renders_as_text(push, payload, f"{name} push")
    for communicator in sockets:
        await communicator.disconnect()


def test_a_user_name_django_accepts_cannot_hold_markup():
    """Actors are free text (`fleet --as`), but a login's user name is not."""
    from django.core.exceptions import ValidationError

    field = get_user_model()._meta.get_field("username")
    with pytest.raises(ValidationError):
        field.run_validators(PAYLOADS["script"])
