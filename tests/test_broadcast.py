"""rollouts.broadcast: pushes leave only after the write commits, one render
per changed page and audience, as the very partials the htmx refresh renders;
and the page says how it stays current.

Personas: Rita, a release manager; Vera, a viewer. The fleet is the
tutorial's, driven in-process under the frozen clock."""

import asyncio
import re
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from fleetui.asgi import application
from rollouts import broadcast, changes
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from tests.fleet_builders import (
    advance,
    approve,
    run_obj,
    settle,
    signed_in,
    tick,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)
from tests.test_consumers import asynchronously


@pytest.fixture
def pushed(monkeypatch):
    """The keys each push was asked to send, instead of sending them."""
    calls = []
    monkeypatch.setattr(broadcast, "push", calls.append)
    return calls


@pytest.fixture
def waiting_at_staging(frozen_clock):
    """The tutorial's run, its staging cluster done, in the 1 m TimedWait."""
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    return run_obj()


def ours(callbacks) -> list:
    """The committed changes (rollouts.changes) a transaction left to deliver."""
    return [c for c in callbacks if isinstance(c, changes._Published)]


# After commit, and only then ------------------------------------------------------------------


@pytest.mark.django_db
def test_an_engine_transition_is_pushed_only_after_its_transaction_commits(
        waiting_at_staging, pushed, django_capture_on_commit_callbacks):
    run = waiting_at_staging
    advance(61)
    with django_capture_on_commit_callbacks() as callbacks:
        tick()
    assert pushed == [], "a push left before the commit"
    assert ours(callbacks)
    for callback in ours(callbacks):
        callback()
    assert pushed == [[("run", run.KIND, run.pk), ("overview",), ("approvals",)]]


@pytest.mark.django_db
def test_an_approval_is_pushed_after_commit_to_its_run_and_the_overview(
        waiting_at_staging, pushed, django_capture_on_commit_callbacks):
    advance(61)
    settle()
    with django_capture_on_commit_callbacks(execute=True):
        approve("example-run-canary")
        assert pushed == []
    assert pushed == [[("run-named", "ClusterStagedUpdateRun", "", "example-run"), ("overview",), ("approvals",)]]


@pytest.mark.django_db
def test_many_changes_in_one_transaction_make_one_push(waiting_at_staging, pushed, django_capture_on_commit_callbacks):
    run = waiting_at_staging
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            for _ in range(5):
                changes.publish(changes.RunChanged.of(run, changes.Origin.ENGINE))
    assert pushed == [[("run", run.KIND, run.pk), ("overview",), ("approvals",)]]


@pytest.mark.django_db
def test_a_rolled_back_write_pushes_nothing(waiting_at_staging, pushed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            changes.publish(changes.RunChanged.of(waiting_at_staging, changes.Origin.ENGINE))
            raise RuntimeError("the write failed")
    assert ours(callbacks) == [] and pushed == []


@pytest.mark.django_db
def test_a_push_that_fails_never_fails_the_write(waiting_at_staging, monkeypatch, caplog):
    monkeypatch.setattr(broadcast, "_push_in_memory", lambda layer, keys: 1 / 0)
    broadcast.push([("overview",)])
    assert "live update not sent" in caplog.text


# The same partials as the htmx refresh ---------------------------------------------------------------


def without_push_markup(html: str) -> str:
    """What differs between a push and the htmx response: the out-of-band
    marker, and the CSRF input a response to one person carries."""
    html = html.replace(' hx-swap-oob="true"', "")
    return re.sub(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">', "", html)


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "audience"), [(VIEWERS, "view"), (RELEASE_MANAGERS, "manage")])
def test_a_run_push_is_the_timeline_the_htmx_refresh_renders(waiting_at_staging, role, audience):
    run = waiting_at_staging
    response = signed_in("someone", role).get(f"/runs/{run.name}/", HTTP_HX_REQUEST="true")
    pushed = broadcast.render_run(run.KIND, run.pk, [audience])[audience]
    assert 'hx-swap-oob="true"' in pushed and 'id="timeline"' in pushed
    assert without_push_markup(pushed) == without_push_markup(response.content.decode())


@pytest.mark.django_db
def test_an_overview_push_is_the_partial_the_htmx_refresh_renders(waiting_at_staging):
    response = signed_in("vera", VIEWERS).get("/", HTTP_HX_REQUEST="true")
    pushed = broadcast.render_overview()
    assert 'hx-swap-oob="true"' in pushed and 'id="overview-live"' in pushed
    assert without_push_markup(pushed) == response.content.decode()


@pytest.mark.django_db
def test_nothing_is_rendered_for_a_page_nobody_watches(waiting_at_staging, monkeypatch):
    """In-memory layer, no socket: no render, no send."""
    renders = []
    monkeypatch.setattr(broadcast, "render_run", lambda *args: renders.append(args) or {})
    monkeypatch.setattr(broadcast, "render_overview", lambda: renders.append("overview") or "")
    broadcast.push([("run", run_obj().KIND, run_obj().pk), ("overview",)])
    assert renders == []


@pytest.mark.django_db
def test_a_run_page_push_is_sent_before_the_overview_and_the_count_are_rendered(waiting_at_staging, monkeypatch):
    """Whoever watches the run does not wait for the other pages' renders."""
    steps, loop = [], asyncio.new_event_loop()
    monkeypatch.setattr(broadcast, "_server_loop", loop)
    monkeypatch.setattr(broadcast, "_render", lambda keys, listening: steps.append(("render", [k[0] for k in keys]))
                        or [(str(k), "html") for k in keys])
    monkeypatch.setattr(broadcast, "_send_all", lambda layer, messages: steps.append(("send", messages)))
    monkeypatch.setattr(broadcast, "_on_server_loop", lambda make: make() or True)
    monkeypatch.setattr(broadcast, "_groups", lambda key: ["g"])
    monkeypatch.setattr(get_channel_layer(), "groups", {"g": {"someone": 0}})
    run = run_obj()
    assert broadcast.push([("overview",), ("run", run.KIND, run.pk), ("approvals",)]) == 3
    assert [step for step, _ in steps] == ["render", "send", "render", "send"]
    assert steps[0][1] == ["run"] and steps[2][1] == ["overview", "approvals"]
    loop.close()


# The embedded mode: the engine's thread, this process's sockets -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_push_from_the_engine_thread_reaches_the_sockets_of_this_process(waiting_at_staging):
    """`fleet serve`: the engine loop's thread has no event loop of its own;
    the push is handed to the loop the sockets live on."""
    run = waiting_at_staging
    user_create(username="vera", role=VIEWERS)

    @asynchronously
    async def scenario():
        client = await database_sync_to_async(signed_in)("vera2", VIEWERS)
        communicator = WebsocketCommunicator(application, broadcast.run_socket_path(run), headers=[
            (b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())])
        assert (await communicator.connect())[0]
        await communicator.receive_from()
        engine = threading.Thread(target=lambda: (advance(61), settle()), name=broadcast.ENGINE_THREAD)
        await database_sync_to_async(lambda: (engine.start(), engine.join()))()
        pushes = []
        while not await communicator.receive_nothing(timeout=0.3):
            pushes.append(await communicator.receive_from())
        pushes = [p for p in pushes if 'id="approvals-count"' not in p]  # the nav's count: test_approvals_count
        assert pushes and "waiting for approval of example-run-canary" in pushes[-1]
        await communicator.disconnect()

    scenario()


# How the page says it stays current ---------------------------------------------------------------------


@pytest.fixture
def engine_thread():
    """A thread named like `fleet serve`'s engine loop, alive while the test runs."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name=broadcast.ENGINE_THREAD, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join()


@pytest.mark.django_db
def test_a_run_page_polls_and_says_why_when_the_engine_runs_in_another_process(waiting_at_staging):
    """The in-memory layer, no engine in this process: `fleet engine` beside `runserver`."""
    page = signed_in("vera", VIEWERS).get("/runs/example-run/").content.decode()
    assert "ws-connect" not in page
    assert "Refreshing every 5 s. Live updates cannot reach this page" in page
    assert 'hx-trigger="every 5s"' in page


@pytest.mark.django_db
def test_a_run_page_listens_when_the_engine_runs_in_this_process(waiting_at_staging, engine_thread):
    run = waiting_at_staging
    page = signed_in("vera", VIEWERS).get("/runs/example-run/").content.decode()
    assert f'ws-connect="/ws/runs/clusterstagedupdaterun/{run.pk}/"' in page
    assert 'hx-ext="ws"' in page and 'data-live-poll="5"' in page
    assert 'hx-trigger="every 5s"' in page  # the fallback, paused by static/live.js while live


@pytest.mark.django_db
def test_the_overview_listens_when_pushes_reach_it(waiting_at_staging, engine_thread):
    page = signed_in("vera", VIEWERS).get("/").content.decode()
    assert 'ws-connect="/ws/overview/"' in page


@pytest.mark.django_db
def test_with_redis_every_page_listens(waiting_at_staging, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    assert broadcast.pushes_reach_browsers()
    assert 'ws-connect="/ws/overview/"' in signed_in("vera", VIEWERS).get("/").content.decode()


@pytest.mark.django_db
def test_a_finished_run_page_neither_listens_nor_polls(waiting_at_staging, engine_thread):
    advance(61)
    settle()
    approve("example-run-canary")
    settle()
    page = signed_in("vera", VIEWERS).get("/runs/example-run/").content.decode()
    assert "succeeded" in page
    assert "hx-trigger" not in page and "live-status" not in page
    # Only the nav's count of waiting gates still listens (test_approvals_count).
    assert re.findall(r'ws-connect="([^"]+)"', page) == [broadcast.NAV_SOCKET_PATH]
