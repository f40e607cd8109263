"""kombu's transports as this app uses them: Redis (fixed, cheaper) and the filesystem (cheaper).

Redis (`Transport`), selected by CELERY_BROKER_TRANSPORT in settings.py whenever REDIS_URL
is set, has one fix, a worker survives Redis going away under load, and one saving, a
Redis client per channel instead of one per command (Channel._create_client).

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

The filesystem (`FilesystemTransport`), the embedded default without REDIS_URL, lists its
queue folder once per batch of messages instead of once per message (FilesystemChannel).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from queue import Empty

import redis
from kombu.exceptions import ChannelError
from kombu.transport import filesystem as kombu_filesystem
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads


class Channel(kombu_redis.Channel):
    # One client for the channel's synchronous commands (see _create_client).
    _sync_client = None

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            # The transport was released (see the module docstring): nothing to connect with.
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)

    def _create_client(self, asynchronous=False):
        """The channel's client for synchronous commands, made once per connection pool.

        kombu builds a new redis.Redis (its whole table of reply parsers) for every such
        command: twice per task (recording the delivered message among the unacknowledged
        ones, then acknowledging it), a measurable share of a worker's CPU. A client holds
        no connection of its own (it takes one from the pool per command, and each caller
        makes its own pipeline), so the pool threads can share it. It follows the pool:
        once the channel drops its pool (a lost connection), the next command makes a new
        pool, through _connparams above, and a new client with it.
        """
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


# --- The filesystem transport (the embedded default, no REDIS_URL) ----------------------------


class FilesystemChannel(kombu_filesystem.Channel):
    """kombu's filesystem channel, listing the queue folder once per batch, not per message.

    kombu's `_get` lists and sorts the whole folder to take one message: with N messages
    queued, taking them all costs N listings of up to N names (1,000 due accounts: ~0.5 ms
    of CPU per message at the start, about 3 % of a worker's CPU over a burst). Here the
    sorted listing is kept and taken from until it runs out, then the folder is listed
    again. Taking a message is still kombu's: move the file out of the folder (atomic;
    a message another consumer took first fails to move and is skipped), read it, delete
    it. So nothing is taken twice or lost; a message that arrives meanwhile waits only
    until the listing runs out (it sorts after the listed ones anyway: names begin with
    the time they were sent).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listed: dict[str, deque[str]] = {}  # queue -> its file names, oldest first

    def _get(self, queue):
        listed = self._listed.get(queue)
        message = self._take_first(listed) if listed else None
        if message is None:
            # Run out (or every name left was taken by another consumer): look afresh.
            self._listed[queue] = listed = self._listing(queue)
            message = self._take_first(listed)
        if message is None:
            raise Empty()
        return message

    def _listing(self, queue: str) -> deque[str]:
        wanted = f"{queue}.msg"
        return deque(
            sorted(name for name in os.listdir(self.data_folder_in) if name.partition(".")[2] == wanted)
        )

    def _take_first(self, listed: deque[str]):
        """The first message in `listed` still in the folder (taking it), or None."""
        processed_folder = self.processed_folder if self.store_processed else tempfile.gettempdir()
        while listed:
            filename = listed.popleft()
            try:
                # As kombu: the move is the claim; a file gone meanwhile was someone else's.
                shutil.move(os.path.join(self.data_folder_in, filename), processed_folder)
            except OSError:
                continue
            filename = os.path.join(processed_folder, filename)
            try:
                with open(filename, "rb") as file:
                    payload = file.read()
                if not self.store_processed:
                    os.remove(filename)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {filename!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        return None


class FilesystemTransport(kombu_filesystem.Transport):
    Channel = FilesystemChannel
