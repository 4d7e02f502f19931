"""The live-update consumers through the whole ASGI stack (origin check,
session auth, routing) with WebsocketCommunicator: who may listen, which
groups a socket joins, and what it receives: the current state first, then
each push, as the page's own partials swapped out of band.

Personas: Rita, a release manager; Vera, a viewer; Olaf, signed in without a
role. The fleet is the tutorial's, driven by the engine in-process."""

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import Client

from fleetui.asgi import application
from rollouts import broadcast, consumers
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from tests.fleet_builders import (
    advance,
    approve,
    run_obj,
    set_state,
    settle,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

from .real_services import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


def asynchronously(scenario):
    """Run an async test body on one event loop (the consumers live on it),
    from a thread of its own: Playwright's session-wide browser keeps an
    event loop in the main thread once a browser test has run."""

    def in_its_own_thread(*args, **kwargs):
        try:
            async_to_sync(scenario)(*args, **kwargs)
        finally:
            connections.close_all()

    @functools.wraps(scenario)
    def run(*args, **kwargs):
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(in_its_own_thread, *args, **kwargs).result()

    return run


@pytest.fixture
def rita():
    return user_create(username="rita", role=RELEASE_MANAGERS)[0]


@pytest.fixture
def vera():
    return user_create(username="vera", role=VIEWERS)[0]


@pytest.fixture
def waiting_at_staging(frozen_clock):
    """The tutorial's run, its staging cluster done, in the 1 m TimedWait."""
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    return run_obj()


def run_path(run) -> str:
    return broadcast.run_socket_path(run)


def socket(path: str, user=None, *, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(path: str, user) -> tuple[WebsocketCommunicator, str]:
    """An accepted socket and the first thing it received."""
    communicator = await database_sync_to_async(socket)(path, user)
    accepted, _ = await communicator.connect(timeout=TIMEOUT)
    assert accepted
    return communicator, await communicator.receive_from(timeout=TIMEOUT)


def latest(pushes: list[str], fragment: str) -> str:
    """The last push that carried this fragment (by its id)."""
    return next(p for p in reversed(pushes) if f'id="{fragment}"' in p)


async def drain(communicator: WebsocketCommunicator, *, counts: bool = False) -> list[str]:
    """Everything received until the socket goes quiet; without the nav's
    count of waiting gates, which every socket gets after a change (unless
    `counts`: tests/test_approvals_count.py)."""
    messages = []
    while not await communicator.receive_nothing(timeout=0.3):
        messages.append(await communicator.receive_from(timeout=TIMEOUT))
    return [m for m in messages if counts or not m.startswith('<span id="approvals-count"')]


# Who may listen ------------------------------------------------------------------------------


@asynchronously
async def test_an_anonymous_socket_is_closed_before_it_is_accepted(waiting_at_staging):
    communicator = socket(run_path(waiting_at_staging))
    accepted, code = await communicator.connect(timeout=TIMEOUT)
    assert (accepted, code) == (False, 4401)


@asynchronously
async def test_a_socket_opened_by_another_site_is_refused_even_with_the_session(waiting_at_staging, vera):
    communicator = await database_sync_to_async(socket)(run_path(waiting_at_staging), vera,
                                                        origin="https://evil.example")
    accepted, _ = await communicator.connect(timeout=TIMEOUT)
    assert not accepted


@asynchronously
async def test_a_person_signed_in_without_a_role_is_refused(waiting_at_staging):
    olaf = await database_sync_to_async(get_user_model().objects.create_user)("olaf", password="x")
    communicator = await database_sync_to_async(socket)(run_path(waiting_at_staging), olaf)
    accepted, code = await communicator.connect(timeout=TIMEOUT)
    assert (accepted, code) == (False, 4403)


@pytest.mark.parametrize("path", ["/ws/runs/clusterstagedupdaterun/999999/", "/ws/runs/configmap/1/"])
@asynchronously
async def test_a_socket_for_a_run_that_does_not_exist_is_refused(path, vera):
    communicator = await database_sync_to_async(socket)(path, vera)
    accepted, code = await communicator.connect(timeout=TIMEOUT)
    assert (accepted, code) == (False, 4404)


# What a socket receives ----------------------------------------------------------------------------


@asynchronously
async def test_a_viewer_gets_the_timeline_first_then_each_engine_transition(waiting_at_staging, vera):
    communicator, first = await connected(run_path(waiting_at_staging), vera)
    assert '<section id="timeline"' in first and 'hx-swap-oob="true"' in first
    assert "waiting for the timed wait" in first
    assert "Stop</button>" not in first and "Stop…" not in first  # a viewer's render
    await database_sync_to_async(lambda: (advance(61), settle()))()
    pushes = await drain(communicator)
    assert pushes, "the engine's transitions were not pushed"
    # The first push is the whole timeline (nothing was pushed to this group
    # before), the next ones only what changed (rollouts/fragments.py).
    assert '<section id="timeline"' in pushes[0] and 'hx-swap-oob="true"' in pushes[0]
    assert all(p.startswith("<!--live-delta base=") for p in pushes[1:])
    assert "waiting for approval of example-run-canary" in latest(pushes, "run-sentence")
    assert "3 of 3 clusters" in latest(pushes, "run-facts")
    await communicator.disconnect()


@asynchronously
async def test_each_audience_joins_its_own_group_and_gets_its_own_buttons(waiting_at_staging, rita, vera):
    run = waiting_at_staging
    rita_socket, rita_first = await connected(run_path(run), rita)
    vera_socket, vera_first = await connected(run_path(run), vera)
    layer = get_channel_layer()
    assert len(layer.groups[broadcast.run_group(run.KIND, run.pk, "manage")]) == 1
    assert len(layer.groups[broadcast.run_group(run.KIND, run.pk, "view")]) == 1
    # Stop is a link to its confirmation (issue 15): the operator gets it, the viewer does not.
    assert "Stop…</a>" in rita_first and "Stop…" not in vera_first
    await database_sync_to_async(lambda: (advance(61), settle()))()
    rita_last, vera_last = (await drain(rita_socket))[-1], (await drain(vera_socket))[-1]
    assert "Approve…</a>" in rita_last and "Approve…" not in vera_last
    for communicator in (rita_socket, vera_socket):
        await communicator.disconnect()
    assert broadcast.run_group(run.KIND, run.pk, "view") not in layer.groups


@asynchronously
async def test_an_approval_made_elsewhere_reaches_the_run_page_and_the_overview(waiting_at_staging, vera):
    await database_sync_to_async(lambda: (advance(61), settle()))()
    run_socket, _ = await connected(run_path(waiting_at_staging), vera)
    overview_socket, overview_first = await connected(broadcast.OVERVIEW_SOCKET_PATH, vera)
    assert '<div id="overview-live"' in overview_first and "example-run-canary" in overview_first
    await database_sync_to_async(approve)("example-run-canary", actor="alice", message="canary is healthy")
    run_pushes, overview_pushes = await drain(run_socket), await drain(overview_socket)
    assert "by alice" in run_pushes[0] and "canary is healthy" in run_pushes[0]
    assert 'hx-swap-oob="true"' in overview_pushes[0]
    assert "Nothing is waiting for approval." in overview_pushes[0]
    for communicator in (run_socket, overview_socket):
        await communicator.disconnect()


@asynchronously
async def test_hostile_text_arrives_escaped(waiting_at_staging, vera):
    await database_sync_to_async(lambda: (advance(61), settle()))()
    communicator, _ = await connected(run_path(waiting_at_staging), vera)
    await database_sync_to_async(approve)("example-run-canary", message='<img src=x onerror="alert(1)">')
    push = (await drain(communicator))[0]
    assert "<img src=x" not in push
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in push
    await communicator.disconnect()


@asynchronously
async def test_a_page_that_reconnects_first_gets_what_it_missed(waiting_at_staging, vera):
    communicator, first = await connected(run_path(waiting_at_staging), vera)
    await communicator.disconnect()
    await database_sync_to_async(lambda: (advance(61), settle()))()
    communicator, again = await connected(run_path(waiting_at_staging), vera)
    assert "waiting for the timed wait" in first
    assert "waiting for approval of example-run-canary" in again
    await communicator.disconnect()


@asynchronously
async def test_a_stop_from_one_page_reaches_the_others(waiting_at_staging, vera):
    communicator, _ = await connected(run_path(waiting_at_staging), vera)
    await database_sync_to_async(set_state)("example-run", "Stop")
    [stop] = await drain(communicator)
    assert "state-changed" in stop and "olivia" in stop  # the person's Stop, before the engine moves
    await database_sync_to_async(settle)()
    assert '<span class="state state-stopped" id="run-state">stopped</span>' in (await drain(communicator))[-1]
    await communicator.disconnect()


@asynchronously
async def test_what_the_browser_sends_changes_nothing(waiting_at_staging, rita):
    communicator, _ = await connected(run_path(waiting_at_staging), rita)
    await communicator.send_to(text_data='{"state": "Stop"}')
    assert await communicator.receive_nothing(timeout=0.3)
    assert (await database_sync_to_async(run_obj)()).spec.get("state") != "Stop"
    await communicator.disconnect()


@pytest.fixture
def quick_rejoin(monkeypatch):
    monkeypatch.setattr(consumers, "REJOIN_SECONDS", 0.05)


@asynchronously
async def test_a_socket_joins_its_group_again_before_the_layer_forgets_it(waiting_at_staging, vera, quick_rejoin):
    run = waiting_at_staging
    communicator, _ = await connected(run_path(run), vera)
    group = get_channel_layer().groups[broadcast.run_group(run.KIND, run.pk, "view")]
    group.clear()  # what group_expiry does to a member after a day
    await asyncio.sleep(0.2)
    assert len(group) == 1
    await communicator.disconnect()


# Access ends while a socket is open ---------------------------------------------------------------


def signed_in_socket(path: str, user) -> tuple[WebsocketCommunicator, Client]:
    """A socket and the browser session that opened it (to log out from)."""
    client = Client()
    client.force_login(user)
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    return WebsocketCommunicator(application, path, headers=headers), client


async def open_socket(path: str, user) -> tuple[WebsocketCommunicator, Client]:
    communicator, client = await database_sync_to_async(signed_in_socket)(path, user)
    accepted, _ = await communicator.connect(timeout=TIMEOUT)
    assert accepted
    await communicator.receive_from(timeout=TIMEOUT)  # the current state
    return communicator, client


async def close_code(communicator: WebsocketCommunicator) -> int:
    """The code the server closed the socket with; fails on any push before it."""
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", f"received {output['type']} instead of a close"
    return output["code"]


@asynchronously
async def test_logging_out_closes_the_sockets_of_that_session(waiting_at_staging, vera):
    communicator, client = await open_socket(run_path(waiting_at_staging), vera)
    other, _ = await open_socket(broadcast.OVERVIEW_SOCKET_PATH, vera)  # another session of vera
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert await close_code(communicator) == consumers.UNAUTHENTICATED
    assert await other.receive_nothing(timeout=0.3)  # her other session stays
    await other.disconnect()


@asynchronously
async def test_deactivating_an_account_closes_its_sockets(waiting_at_staging, vera):
    communicator, _ = await open_socket(run_path(waiting_at_staging), vera)

    def deactivate():
        vera.is_active = False
        vera.save()

    await database_sync_to_async(deactivate)()
    assert await close_code(communicator) == consumers.UNAUTHENTICATED


@asynchronously
async def test_losing_the_role_closes_the_socket(waiting_at_staging, vera):
    communicator, _ = await open_socket(broadcast.OVERVIEW_SOCKET_PATH, vera)
    await database_sync_to_async(vera.groups.clear)()
    assert await close_code(communicator) == consumers.FORBIDDEN


@asynchronously
async def test_a_new_role_closes_the_socket_so_the_page_reconnects_with_its_buttons(waiting_at_staging, vera):
    communicator, _ = await open_socket(broadcast.OVERVIEW_SOCKET_PATH, vera)
    managers = await database_sync_to_async(lambda: Group.objects.get(name=RELEASE_MANAGERS))()
    await database_sync_to_async(vera.groups.add)(managers)
    assert await close_code(communicator) == consumers.AUDIENCE_CHANGED


@asynchronously
async def test_a_push_after_the_session_ended_unnoticed_is_not_received(waiting_at_staging, vera, monkeypatch):
    """The session ends without a logout (expired, or deleted by SQL): the
    next push checks it again first, and closes instead of forwarding."""
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0, raising=False)
    communicator, client = await open_socket(run_path(waiting_at_staging), vera)
    await database_sync_to_async(lambda: Session.objects.filter(session_key=client.session.session_key).delete())()
    await database_sync_to_async(lambda: (advance(61), settle()))()
    assert await close_code(communicator) == consumers.UNAUTHENTICATED


@asynchronously
async def test_rejoining_its_groups_checks_the_session_first(waiting_at_staging, vera, quick_rejoin):
    communicator, client = await open_socket(run_path(waiting_at_staging), vera)
    await database_sync_to_async(lambda: Session.objects.filter(session_key=client.session.session_key).delete())()
    assert await close_code(communicator) == consumers.UNAUTHENTICATED


# Across processes: channels-redis ---------------------------------------------------------------


@pytest.fixture
def redis_layer(settings, tmp_path):
    redis = RedisServer(tmp_path).start()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": redis.url, "max_connections": 50}]}}}
    yield redis
    redis.kill()


@pytest.mark.slow  # starts a redis-server: not in `make test-fast`
@asynchronously
async def test_a_push_travels_through_redis_as_from_an_engine_in_a_celery_worker(redis_layer, waiting_at_staging,
                                                                                vera):
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    communicator, first = await connected(run_path(waiting_at_staging), vera)
    assert "waiting for the timed wait" in first
    await database_sync_to_async(lambda: (advance(61), settle()))()
    pushes = await drain(communicator)
    assert pushes and "waiting for approval of example-run-canary" in pushes[-1]
    await communicator.disconnect()


@asynchronously
async def test_a_logout_closes_the_socket_through_redis_too(redis_layer, waiting_at_staging, vera):
    communicator, client = await open_socket(run_path(waiting_at_staging), vera)
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert await close_code(communicator) == consumers.UNAUTHENTICATED


@pytest.mark.slow  # starts a redis-server: not in `make test-fast`
@asynchronously
async def test_every_viewer_gets_a_push_while_the_servers_sync_thread_is_busy(redis_layer, waiting_at_staging, vera,
                                                                              monkeypatch):
    """Ten viewers of one run on one server each get the group's message
    while the process's thread-sensitive thread, where a connecting socket
    renders its page, is held by other work: a push does not wait in line
    behind it (issue 16's seconds-long stall while 49 sockets connected)."""
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 3600)  # no session check due: only the push itself
    viewers = [(await connected(run_path(waiting_at_staging), vera))[0] for _ in range(10)]
    holding, release = threading.Event(), threading.Event()

    def hold_the_sync_thread():
        holding.set()
        release.wait(timeout=60)

    held = asyncio.ensure_future(sync_to_async(hold_the_sync_thread)())
    try:
        while not holding.is_set():
            await asyncio.sleep(0.01)
        group = broadcast.run_group(waiting_at_staging.KIND, waiting_at_staging.pk, "view")
        await get_channel_layer().group_send(group, {"type": broadcast.MESSAGE_TYPE, "html": "<p>pushed</p>"})
        received = [await viewer.receive_from(timeout=TIMEOUT) for viewer in viewers]
    finally:
        release.set()
        await held
    assert received == ["<p>pushed</p>"] * 10
    for viewer in viewers:
        await viewer.disconnect()


# Sockets opening one page at once ----------------------------------------------------------------


@asynchronously
async def test_sockets_that_open_a_page_while_it_renders_share_the_next_render_not_that_one():
    """The first socket's render began before the others joined: they may not
    use it (it could miss a change pushed before they joined), and share the
    one that begins after it."""
    shared, release, renders = consumers.SharedRenders(), threading.Event(), []

    def render():
        renders.append(len(renders) + 1)
        release.wait(timeout=30)
        return f"render {len(renders)}"

    first = asyncio.ensure_future(shared.render(("run", 1, "view"), render))
    while not renders:
        await asyncio.sleep(0.01)
    others = [asyncio.ensure_future(shared.render(("run", 1, "view"), render)) for _ in range(5)]
    while shared.pages[("run", 1, "view")].waiting < 6:
        await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(first, *others) == ["render 1"] + ["render 2"] * 5
    assert renders == [1, 2]
    assert shared.pages == {}


@asynchronously
async def test_a_socket_that_opens_a_page_after_its_render_finished_renders_it_again():
    shared, renders = consumers.SharedRenders(), []

    def render():
        renders.append(1)
        return f"render {len(renders)}"

    assert await shared.render(("overview",), render) == "render 1"
    assert await shared.render(("overview",), render) == "render 2"


@asynchronously
async def test_a_render_that_failed_leaves_the_sockets_waiting_for_it_to_render_again():
    """Two sockets join while the first render runs; the next render, begun
    for both, fails for the one it ran for: the other may not fall back on
    the first render (begun before it joined), it renders once more."""
    shared, release, renders = consumers.SharedRenders(), threading.Event(), []

    def render():
        renders.append(len(renders) + 1)
        if renders[-1] == 1:
            release.wait(timeout=30)
        if renders[-1] == 2:
            raise RuntimeError("the database went away")
        return f"render {renders[-1]}"

    first = asyncio.ensure_future(shared.render(("nav",), render))
    while not renders:
        await asyncio.sleep(0.01)
    failing, waiting = (asyncio.ensure_future(shared.render(("nav",), render)) for _ in range(2))
    while shared.pages[("nav",)].waiting < 3:
        await asyncio.sleep(0.01)
    release.set()
    assert await first == "render 1"
    with pytest.raises(RuntimeError):
        await failing
    assert await waiting == "render 3"


@asynchronously
async def test_a_socket_checks_its_session_again_after_a_push_so_the_next_one_need_not_wait(waiting_at_staging,
                                                                                             vera, monkeypatch):
    """Its check is renewed in the background once a push went through: a
    session that ended unnoticed closes the socket before any other push."""
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 3600)
    monkeypatch.setattr(consumers, "RENEW_SECONDS", 0.0)
    communicator, client = await open_socket(run_path(waiting_at_staging), vera)
    await database_sync_to_async(lambda: Session.objects.filter(session_key=client.session.session_key).delete())()
    group = broadcast.run_group(waiting_at_staging.KIND, waiting_at_staging.pk, "view")
    await get_channel_layer().group_send(group, {"type": broadcast.MESSAGE_TYPE, "html": "<p>pushed</p>"})
    assert await communicator.receive_from(timeout=TIMEOUT) == "<p>pushed</p>"  # on the check it had
    assert await close_code(communicator) == consumers.UNAUTHENTICATED
    await communicator.disconnect()  # leaves its groups: the in-memory layer outlives the test
