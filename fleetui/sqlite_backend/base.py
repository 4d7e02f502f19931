"""Django's SQLite backend, with a writer that says so when it must wait.

SQLite has one writer at a time. A transaction that finds the write lock
taken sleeps in SQLite's busy handler and tries again: after 1, 2, 5 … ms,
then every 100 ms. The engine loop's transactions come back to back (one per
run's advance, a fraction of a millisecond apart), so a person's write kept
waiting kept missing the gaps for as long as a tick lasted: seconds with 100
rollouts running (issue 19, "placement of 100 clusters while the rollouts
run").

Here a transaction tries to begin without waiting. While the lock is taken
it tries again every POLL_SECONDS and, every ASK_SECONDS, calls the
`writer_waiting_hooks` (the engine wake-up registers one, which asks the
loop to leave a gap: rollouts/engine/wakeup.py). At the configured timeout
it begins as Django does (SQLite waits once more, then Django raises
"database is locked"). Two PRAGMAs per transaction are all it costs when
nobody waits.
"""

import logging
import sqlite3
import time
from collections.abc import Callable

from django.db.backends.sqlite3 import base

log = logging.getLogger(__name__)
POLL_SECONDS = 0.005  # SQLite's own handler waits 100 ms between tries: the loop's gaps are shorter
ASK_SECONDS = 0.1  # a loop that began a tick before our first ask must hear it again
writer_waiting_hooks: list[Callable[[], None]] = []


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self):
        if self.transaction_mode != "IMMEDIATE" or not writer_waiting_hooks:
            return super()._start_transaction_under_autocommit()
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        self.connection.execute("PRAGMA busy_timeout = 0")
        try:
            if self._began_within(timeout):
                return None
        finally:
            self.connection.execute(f"PRAGMA busy_timeout = {round(timeout * 1000)}")
        return super()._start_transaction_under_autocommit()

    def _began_within(self, timeout: float) -> bool:
        """Try BEGIN IMMEDIATE until `timeout`, asking for a gap while the
        lock is taken; whether it began."""
        deadline, asked = time.monotonic() + timeout, None
        while True:
            try:
                self.connection.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            now = time.monotonic()
            if now >= deadline:
                return False
            if asked is None or now - asked >= ASK_SECONDS:
                _ask()
                asked = now
            time.sleep(POLL_SECONDS)


def _ask() -> None:
    for hook in writer_waiting_hooks:
        try:
            hook()
        except Exception:  # a hint: the write goes on whatever it does
            log.debug("writer-waiting hook failed", exc_info=True)
