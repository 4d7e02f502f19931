"""Where the broadcaster remembers what it last pushed to each group of a run's
page (a fragments.PageState per group), so the next push sends only what
changed (rollouts.fragments).

With REDIS_URL, in Redis: several engine processes (Celery workers) push the
same run, and each must diff against what the last of them sent, whichever it
was. Without it, in this process's memory: the in-memory channel layer only
reaches this process's sockets anyway.

A lost or stale memory never leaves a page wrong: a delta names the version
it applies to, and a page at another version fetches the whole timeline
(static/live.js). Two processes pushing the same run at once may each diff
against the same state: the pages then apply the first and refetch on the
second. So a plain GET and SET are enough; no lock. A group nobody listened
to while its run changed keeps its older state (nothing is rendered for an
empty group): a page that joins it later was sent the whole timeline on
connect, so the next delta's base is not its version and it fetches the
timeline once.
"""

import threading
from collections import OrderedDict

import redis
from django.conf import settings

from rollouts.fragments import PageState

KEY_PREFIX = "fleet:live-page:"
TTL_SECONDS = 24 * 3600  # a run nobody watched for a day starts again from a full push
PROCESS_GROUPS = 2000  # groups remembered in process memory, least recently pushed forgotten first


class ProcessMemory:
    """The states of this process's pushes, newest last, bounded."""

    def __init__(self, size: int = PROCESS_GROUPS):
        self.size, self.states, self.lock = size, OrderedDict(), threading.Lock()

    def load(self, group: str) -> PageState | None:
        with self.lock:
            return self.states.get(group)

    def save(self, group: str, state: PageState) -> None:
        with self.lock:
            self.states[group] = state
            self.states.move_to_end(group)
            while len(self.states) > self.size:
                self.states.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.states.clear()


class RedisMemory:
    """The states of every process's pushes, in Redis (one JSON value per group)."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, max_connections=8)

    def load(self, group: str) -> PageState | None:
        text = self.client.get(KEY_PREFIX + group)
        return PageState.from_json(text) if text else None

    def save(self, group: str, state: PageState) -> None:
        self.client.set(KEY_PREFIX + group, state.to_json(), ex=TTL_SECONDS)

    def clear(self) -> None:
        keys = list(self.client.scan_iter(KEY_PREFIX + "*"))
        if keys:
            self.client.delete(*keys)


_lock = threading.Lock()
_memories: dict[str, ProcessMemory | RedisMemory] = {}


def memory() -> ProcessMemory | RedisMemory:
    """This process's memory: in Redis when REDIS_URL is set, else in process."""
    url = settings.REDIS_URL or ""
    with _lock:
        if url not in _memories:
            _memories[url] = RedisMemory(url) if url else ProcessMemory()
        return _memories[url]
