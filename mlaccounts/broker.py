"""kombu's Redis transport with one fix: a worker survives Redis going away under load.

The bug (issue 10.2; upstream celery/kombu#582, "AttributeError: 'NoneType' object has no
attribute 'hostname'", still in kombu 5.7.0, the latest release): when the broker
connection drops, Celery's consumer collects the connection, which can release the
transport (`Connection._do_close_transport` sets `transport.client = None`) before the
channel holding the worker's unacknowledged messages is closed. Closing that channel
restores those messages ("Restoring N unacknowledged message(s)"), which opens a Redis
pool, which reads the host from `transport.client`: an AttributeError. It is not a
connection error, so Celery does not ignore it and the worker exits ("Unrecoverable
error"). It needs syncs in flight (unacknowledged) when Redis goes; an idle worker
reconnects fine.

Here a channel whose transport was released raises a connection error instead, which
Celery and kombu treat as what it is: the connection is gone. The worker reconnects; the
syncs already running finish and save their results; the messages it could not hand back
stay in Redis's unacked set and return after the visibility timeout, and the dispatch job
re-sends any account that is due meanwhile (a duplicate sync is a no-op under the claim).

Selected by CELERY_BROKER_TRANSPORT in settings.py whenever REDIS_URL is set.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            # The transport was released (see the module docstring): nothing to connect with.
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
