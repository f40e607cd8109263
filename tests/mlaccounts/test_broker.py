"""mlaccounts.broker: kombu's Redis transport, fixed for issue 10.2 (celery/kombu#582).

A channel closed after its connection released the transport (what Celery's consumer
does to a worker holding unacknowledged messages when Redis goes away) must fail like a
lost connection, which Celery ignores and recovers from, not with an AttributeError that
stops the worker. The real worker is exercised in tests/sync/test_worker.py.
"""

import uuid

import pytest
import redis
from django.conf import settings
from kombu import Connection, Exchange, Queue

pytestmark = pytest.mark.redis


@pytest.fixture
def queue_name():
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name)
    for tag, payload in client.hgetall("unacked").items():
        if name.encode() in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def _channel_holding_an_unacked_message(connection: Connection, name: str):
    channel = connection.default_channel
    queue = Queue(name, Exchange(name), name)(channel)
    queue.declare()
    connection.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=name)
    assert queue.get(no_ack=False) is not None
    return channel


def _release_transport(connection: Connection) -> None:
    # What kombu's Connection.collect() can leave behind (_do_close_transport) before the
    # channel with the unacknowledged messages is closed.
    connection.transport.client = None


def test_the_upstream_transport_still_has_the_bug(queue_name):
    # When this fails, kombu fixed celery/kombu#582: Channel._connparams in broker.py can go.
    connection = Connection(settings.REDIS_URL, transport="kombu.transport.redis:Transport")
    channel = _channel_holding_an_unacked_message(connection, queue_name)
    _release_transport(connection)
    with pytest.raises(AttributeError, match="hostname"):
        connection.maybe_close_channel(channel)


def test_closing_a_channel_of_a_released_transport_is_a_connection_error(queue_name):
    connection = Connection(settings.REDIS_URL, transport=settings.CELERY_BROKER_TRANSPORT)
    channel = _channel_holding_an_unacked_message(connection, queue_name)
    _release_transport(connection)

    with pytest.raises(connection.connection_errors):
        channel.close()
    connection.maybe_close_channel(channel)  # what Celery and kombu do: ignored
    # The message is not lost: still in Redis's unacked set, back after the visibility timeout.
    assert any(
        queue_name.encode() in payload
        for payload in redis.Redis.from_url(settings.REDIS_URL).hvals("unacked")
    )


def test_a_channel_makes_one_client_per_connection_pool(queue_name):
    # Every unacked-set update and every ack asked kombu for a new client; one per pool is
    # enough (a client takes a connection from the pool per command), and a pool dropped
    # with a lost connection must not keep its client alive.
    connection = Connection(settings.REDIS_URL, transport="mlaccounts.broker:Transport")
    try:
        channel = _channel_holding_an_unacked_message(connection, queue_name)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        channel._disconnect_pools()
        with channel.conn_or_acquire() as after:
            assert after is not first and after.connection_pool is channel.pool
            assert after.ping()
    finally:
        connection.release()
