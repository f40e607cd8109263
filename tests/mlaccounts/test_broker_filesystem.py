"""mlaccounts.broker.FilesystemTransport: kombu's filesystem broker, one folder listing per batch.

It must hand out every message once (oldest first, to the millisecond, as kombu's), skip
messages another consumer took from its listing, and find messages sent after it listed
the folder.
"""

import os
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from mlaccounts import broker


@pytest.fixture
def folders(tmp_path):
    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
    }
    for path in options.values():
        os.makedirs(path, exist_ok=True)  # the in and out folders are one
    return options


def _connection(folders) -> Connection:
    return Connection(
        "filesystem://localhost/",
        transport="mlaccounts.broker:FilesystemTransport",
        transport_options=folders,
    )


@pytest.fixture
def name():
    # kombu keeps the filesystem transport's bindings in one state per process: a name of
    # each test's own, so that no test's binding hides another's.
    return f"test-fs-{uuid.uuid4().hex[:8]}"


def _queue(connection: Connection, name: str) -> Queue:
    queue = Queue(name, Exchange(name), name)(connection.default_channel)
    queue.declare()
    return queue


def _send(connection: Connection, name: str, *numbers: int) -> Queue:
    queue = _queue(connection, name)
    producer = connection.Producer(connection.default_channel)
    for n in numbers:
        producer.publish({"n": n}, exchange=queue.exchange, routing_key=name)
    return queue


def _take(queue: Queue) -> int | None:
    message = queue.get(no_ack=True)
    return message.payload["n"] if message is not None else None


def test_every_message_once_with_one_listing_per_batch(folders, name, monkeypatch):
    listings = []
    real_listdir = os.listdir
    monkeypatch.setattr(broker.os, "listdir", lambda path: listings.append(path) or real_listdir(path))
    with _connection(folders) as connection:
        queue = _send(connection, name, *range(5))
        listings.clear()  # what taking costs, not what sending does
        assert sorted(_take(queue) for _ in range(5)) == list(range(5))
        assert len(listings) == 1
        assert _take(queue) is None  # the listing ran out: looked again, found nothing
        assert len(listings) == 2
        assert os.listdir(folders["data_folder_in"]) == []


def test_messages_taken_by_another_consumer_are_skipped_and_new_ones_found(folders, name):
    with _connection(folders) as mine, _connection(folders) as other:
        queue = _send(mine, name, 1, 2, 3)
        first = _take(queue)  # lists the other two as well
        other_queue = _queue(other, name)
        second = _take(other_queue)  # taken from under our listing
        _send(mine, name, 4)  # sent after our listing
        rest = [_take(queue), _take(queue)]
        assert sorted([first, second, *rest]) == [1, 2, 3, 4]
        assert _take(queue) is None and _take(other_queue) is None
