"""Django's SQLite backend, with a writer that says so when it must wait.

SQLite has one writer at a time. A transaction that finds the write lock
taken sleeps in SQLite's busy handler and tries again: after 1, 2, 5 … ms,
then every 100 ms. The engine loop's transactions come back to back (one per
run's advance, a fraction of a millisecond apart), so a person's write kept
waiting kept missing the gaps for as long as a tick lasted: seconds with 100
rollouts running (issue 19, "placement of 100 clusters while the rollouts
run").

Here a transaction first tries to begin without waiting; when the lock is
taken it calls the `writer_waiting_hooks` (the engine wake-up registers one,
which asks the loop to leave a gap: rollouts/engine/wakeup.py), then begins
as Django does, waiting up to the configured timeout. Two PRAGMAs per
transaction are all it costs when nobody waits.
"""

import logging
import sqlite3
from collections.abc import Callable

from django.db.backends.sqlite3 import base

log = logging.getLogger(__name__)
writer_waiting_hooks: list[Callable[[], None]] = []


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self):
        if self.transaction_mode != "IMMEDIATE" or not writer_waiting_hooks:
            return super()._start_transaction_under_autocommit()
        waits_ms = round(float(self.settings_dict["OPTIONS"].get("timeout", 5)) * 1000)
        self.connection.execute("PRAGMA busy_timeout = 0")
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            return None
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        finally:
            self.connection.execute(f"PRAGMA busy_timeout = {waits_ms}")
        for hook in writer_waiting_hooks:
            try:
                hook()
            except Exception:  # a hint: the write goes on whatever it does
                log.debug("writer-waiting hook failed", exc_info=True)
        return super()._start_transaction_under_autocommit()
