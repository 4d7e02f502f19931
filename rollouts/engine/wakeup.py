"""Waking the engine the moment something changes a run, not on a timer.

Writers call notify_after_commit(); the engine loop waits on a Listener.
In one process a threading.Event carries the signal; across processes (the
CLI and `fleet engine`) a datagram on a Unix socket under var/ does. Both are
hints: the loop's safety-net pass catches anything a lost signal missed.
"""

import os
import select
import socket
import threading
from pathlib import Path

from django.conf import settings
from django.db import transaction

_in_process = threading.Event()


def socket_path() -> Path:
    return Path(getattr(settings, "FLEET_ENGINE_SOCKET", "") or settings.BASE_DIR / "var" / "engine.sock")


def notify() -> None:
    """Wake any engine loop now (best effort, never raises)."""
    _in_process.set()
    path = socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"wake", str(path))
    except OSError:
        pass  # no engine listening, or its queue is full: it is awake anyway


def notify_after_commit() -> None:
    transaction.on_commit(notify)


class Listener:
    """The engine side: wait(timeout) returns early when notified."""

    def __init__(self):
        self.path = socket_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        if _in_process.is_set():
            _in_process.clear()
            self._drain()
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        woke = bool(ready) or _in_process.is_set()
        _in_process.clear()
        self._drain()
        return woke

    def _drain(self) -> None:
        while True:
            try:
                self.sock.recv(64)
            except (BlockingIOError, OSError):
                return

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
