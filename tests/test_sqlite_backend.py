"""The SQLite backend's writer that says when it must wait for the write
lock (fleetui/sqlite_backend), and the engine loop's gap for it
(rollouts/engine/wakeup.py: writer_waiting, writer_gap)."""

import socket
import tempfile
import threading
import time

import pytest
from django.db import OperationalError, connection

from fleetui.sqlite_backend import base as sqlite_backend
from rollouts.engine import wakeup

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's one writer at a time")


@pytest.fixture
def two_writers(tmp_path, monkeypatch, django_db_blocker):
    """Two connections to a SQLite file of their own, and the hooks they call (recorded)."""
    settings_dict = {**connection.settings_dict, "NAME": str(tmp_path / "lock.sqlite3")}
    first = sqlite_backend.DatabaseWrapper(settings_dict, alias="first")
    second = sqlite_backend.DatabaseWrapper(settings_dict, alias="second")
    called = []
    monkeypatch.setattr(sqlite_backend, "writer_waiting_hooks", [lambda: called.append(True)])
    with django_db_blocker.unblock():
        yield first, second, called
        first.close()
        second.close()


def test_a_writer_that_finds_the_lock_taken_says_so_then_waits_for_it(two_writers):
    first, second, called = two_writers
    first.ensure_connection()
    first._start_transaction_under_autocommit()  # holds the write lock
    sqlite_backend.writer_waiting_hooks.append(lambda: first.connection.execute("COMMIT"))  # the holder gives way
    second.ensure_connection()
    second._start_transaction_under_autocommit()
    assert called == [True]
    second.connection.execute("COMMIT")
    assert second.connection.execute("PRAGMA busy_timeout").fetchone()[0] == 20000  # waits as configured again


def test_a_writer_that_gets_the_lock_at_once_says_nothing(two_writers):
    first, second, called = two_writers
    first.ensure_connection()
    first._start_transaction_under_autocommit()
    first.connection.execute("COMMIT")
    assert called == []


@pytest.fixture
def listener(settings):
    settings.FLEET_ENGINE_SOCKET = f"{tempfile.mkdtemp(prefix='fleet-', dir='/tmp')}/engine.sock"
    for flag in (wakeup._writer_waiting_here, wakeup._in_process):
        flag.clear()  # what earlier tests left for a loop that never ran
    wakeup._first_wake.clear()
    opened = wakeup.Listener()
    yield opened
    opened.close()


def test_the_loop_leaves_a_gap_once_for_a_writer_of_its_own_process(listener):
    writer = threading.Thread(target=wakeup.writer_waiting)  # a web thread of `fleet serve`
    writer.start()
    writer.join()
    assert wakeup.writer_gap() is True
    assert wakeup.writer_gap() is False


def test_the_loops_own_writes_ask_for_no_gap(listener):
    wakeup.writer_waiting()  # from the loop's thread: it waits for another writer, not for itself
    assert wakeup.writer_gap() is False


def test_a_writer_of_another_process_asks_through_the_socket(listener):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"yield {time.time()}".encode(), str(listener.path))
    assert wakeup.writer_gap() is True
    assert listener.wait(0) is False  # a writer waiting is no wake-up


def test_without_a_loop_a_waiting_writer_asks_nothing_and_nothing_fails(settings):
    settings.FLEET_ENGINE_SOCKET = f"{tempfile.mkdtemp(prefix='fleet-', dir='/tmp')}/engine.sock"
    wakeup.writer_waiting()
    assert wakeup.writer_gap() is False


def test_a_writer_waiting_while_the_loop_sleeps_neither_wakes_it_nor_costs_the_next_tick_a_gap(listener):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"yield {time.time()}".encode(), str(listener.path))
    assert listener.wait(0.05) is False
    assert wakeup.writer_gap() is False


def test_a_writer_that_never_gets_the_lock_fails_as_djangos_does(tmp_path, django_db_blocker, monkeypatch):
    settings_dict = {**connection.settings_dict, "NAME": str(tmp_path / "lock.sqlite3"),
                     "OPTIONS": {**connection.settings_dict["OPTIONS"], "timeout": 0.05}}
    holder = sqlite_backend.DatabaseWrapper(settings_dict, alias="holder")
    writer = sqlite_backend.DatabaseWrapper(settings_dict, alias="writer")
    called = []
    monkeypatch.setattr(sqlite_backend, "writer_waiting_hooks", [lambda: called.append(True)])
    with django_db_blocker.unblock():
        holder.ensure_connection()
        holder._start_transaction_under_autocommit()
        writer.ensure_connection()
        with pytest.raises(OperationalError, match="locked"):
            writer._start_transaction_under_autocommit()
        holder.close()
        writer.close()
    assert called == [True]
