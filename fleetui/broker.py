"""The Celery broker transport: kombu's Redis transport, with one fix so a
worker survives Redis going away while it holds unacknowledged tasks.

The crash (kombu 5.7 / celery 5.7 / redis-py 8.2; with the stock transport
tests/test_outages.py lost a worker in 2 of 2 runs here, and
tests/test_broker.py replays the close sequence deterministically):

1. A worker with a free pool slot, or holding a countdown task, keeps a
   BRPOP in flight on its task channel while it holds unacknowledged tasks.
2. Redis dies. The worker notices on another socket first (the remote
   control or gossip fanout channel, in every traceback we saw) and closes
   its connection.
   `Channel.close()` first reads the pending BRPOP reply and catches only
   `Empty` (celery/kombu#1733): on the dead socket that read raises
   `ConnectionError`, so close stops before the channel is marked closed
   and before its unacknowledged messages are restored.
3. `Connection.collect()` swallows that error and sets the transport's
   client to None; celery 5.7 then closes the channel a second time
   (celery/celery#10242), which restores the unacknowledged messages
   through `_connparams()`: `None.hostname` ->
   `CRITICAL Unrecoverable error: AttributeError(...)` and the worker exits.

The fix treats a connection error while reading that last reply like "no
reply" (which it is), so the first close runs to the end and restores (or,
Redis being down, leaves in Redis's `unacked` hash for the visibility
timeout to redeliver) what it held; the second close is then a no-op.

Why not pin celery<5.7: celery 5.6 needs kombu 5.6, which caps redis-py
below 6.5, so the pin drags redis-py (and channels-redis's client) three
majors back. This subclass is the smaller change; drop it once kombu
catches connection errors in `Channel.close()` itself.

Used when REDIS_URL is set: settings.CELERY_BROKER_TRANSPORT names it.
"""

from queue import Empty

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def close(self):
        """Close as kombu does, but never stop half way because the socket
        of the BRPOP in flight is dead (see the module docstring)."""
        if self._in_poll:
            try:
                self._brpop_read()  # clears _in_poll, whatever it raises
            except (Empty, *self.connection_errors):
                pass
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel
