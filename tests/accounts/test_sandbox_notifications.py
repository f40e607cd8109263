"""The sandbox as ML's webhook emitter (§6, §9 item 5): activity, deliveries, retries, missed feeds.

A small local receiver plays the app's webhook: it records what arrives and answers with the
status (and delay) a test asks for. Waits poll a condition with a generous deadline; no test
asserts that something was fast.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from accounts.mercadolivre.sandbox import DEMO_SELLERS, SANDBOX_APP, SANDBOX_CLIENT_ID, start_sandbox
from accounts.mercadolivre.sandbox import notifications as notifications_module
from accounts.mercadolivre.sandbox.sellers import standing_orders

TIMEOUT = 10
RETRY = 0.05
UNAUTHORIZED = {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}
FORBIDDEN = {"message": "forbidden", "error": "forbidden", "status": 403, "cause": []}
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STANDING = (
    "confirmed,payment_required,payment_in_process,partially_paid,paid,partially_refunded,pending_cancel"
)


def _seller(nickname):
    return next(seller for seller in DEMO_SELLERS if seller.nickname == nickname)


MEDIUM = _seller("CASA_DA_ANA")  # MLB
NEW = _seller("LOJA_NOVA_TESTE")  # MLB, every size 0
BAIRES = _seller("TECNO_BAIRES")  # MLA


class Receiver:
    """The app's webhook: records every POST and answers ``answers`` in turn, then ``status``.

    An answer is (status, delay seconds): the status line goes out at once and the body after
    the delay, so a slow answer always shows its status, however busy the machine. ``gate``,
    when set to an Event, holds every answer until the test sets it.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.posts: list[dict] = []
        self.answers: list[tuple[int, float]] = []
        self.status = 200
        self.gate: threading.Event | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.posts.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                    )
                    status, delay = receiver.answers.pop(0) if receiver.answers else (receiver.status, 0)
                    gate = receiver.gate
                if gate is not None:
                    gate.wait(TIMEOUT)
                payload = b"ok" if status == 200 else b"boom"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.flush()
                    time.sleep(delay)
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sandbox gave up on a slow answer and hung up

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ml/notifications/secret-path/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def bodies(self) -> list[dict]:
        with self.lock:
            return [post["body"] for post in self.posts]

    def close(self):
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sandbox(receiver):
    server = start_sandbox(port=0, notifications_url=receiver.url, notification_retry_seconds=RETRY)
    yield server
    server.stop()


def wait_until(condition, what, timeout=TIMEOUT):
    """Poll ``condition`` until it returns something truthy (and return it), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _post_control(sandbox, name, **body):
    return requests.post(f"{sandbox.url}/_sandbox/{name}", json=body, timeout=TIMEOUT)


def _control(sandbox, name, **body):
    response = _post_control(sandbox, name, **body)
    assert response.status_code == 200, response.text
    return response.json()


def _activity(sandbox, user_id, topic, **body):
    return _control(sandbox, "activity", user_id=user_id, topic=topic, **body)


def _deliveries(sandbox):
    response = requests.get(f"{sandbox.url}/_sandbox/notifications", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def _settled(sandbox, count):
    """Wait until ``count`` deliveries are logged and none is pending; return the report."""

    def settled():
        report = _deliveries(sandbox)
        deliveries = report["deliveries"]
        done = len(deliveries) == count and all(d["status"] != "pending" for d in deliveries)
        return report if done else None

    return wait_until(settled, f"{count} settled deliveries")


def _get(sandbox, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sandbox.url}{path}", params=params, headers=headers, timeout=TIMEOUT)


def _missed_feeds(sandbox, token, **params):
    return _get(sandbox, "/missed_feeds", token, **{"app_id": SANDBOX_APP.app_id, **params})


def _token(sandbox, user_id=MEDIUM.id):
    return _control(sandbox, "mint", user_id=user_id)["access_token"]


def _notification_id(body):
    return body.get("_id") or body.get("id")


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Bodies ---------------------------------------------------------------------------------------


def test_notifications_mix_the_two_body_models_and_user_id_types(sandbox, receiver):
    answer = _activity(sandbox, MEDIUM.id, "questions", duplicates=4)

    bodies = wait_until(lambda: len(receiver.bodies()) == 4 and receiver.bodies(), "four notifications")
    assert {_notification_id(body) for body in bodies} == {
        _notification_id(b) for b in answer["notifications"]
    }
    assert len({_notification_id(body) for body in bodies}) == 4  # one id per notification
    assert sorted("_id" in body for body in bodies) == [False, False, True, True]
    assert sorted(type(body["user_id"]).__name__ for body in bodies) == ["int", "int", "str", "str"]
    for body in bodies:
        assert ("_id" in body) != ("id" in body)
        assert int(body["user_id"]) == MEDIUM.id
        assert body["topic"] == "questions"
        assert body["resource"] == answer["resource"]
        assert re.fullmatch(r"/questions/\d+", body["resource"])
        assert body["application_id"] == SANDBOX_APP.app_id
        assert body["attempts"] == 1
        assert STAMP_RE.match(body["sent"]) and STAMP_RE.match(body["received"])
        assert body["sent"] >= body["received"]
        assert "actions" not in body


def test_notifications_are_json_posts_to_the_callback_url(sandbox, receiver):
    _activity(sandbox, MEDIUM.id, "orders_v2")

    wait_until(lambda: receiver.posts, "a notification")
    post = receiver.posts[0]
    assert post["path"] == "/ml/notifications/secret-path/"
    headers = {name.lower(): value for name, value in post["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"


@pytest.mark.parametrize(
    ("seller", "topic", "notified_topic", "resource_re"),
    [
        (MEDIUM, "questions", "questions", r"/questions/\d+"),
        (MEDIUM, "orders_v2", "orders_v2", r"/orders/\d+"),
        (MEDIUM, "items", "items", r"/items/MLB\d+"),
        (BAIRES, "items", "items", r"/items/MLA\d+"),  # the seller's site prefix
        (MEDIUM, "claims", "post_purchase", r"/post-purchase/v1/claims/\d+"),
    ],
)
def test_each_topic_points_at_its_resource(sandbox, receiver, seller, topic, notified_topic, resource_re):
    answer = _activity(sandbox, seller.id, topic)

    body = wait_until(lambda: receiver.bodies(), "a notification")[0]
    assert answer["user_id"] == seller.id and answer["topic"] == topic
    assert body["topic"] == notified_topic
    assert re.fullmatch(resource_re, body["resource"])
    assert body["resource"] == answer["resource"]


def test_claims_use_the_typified_model_with_actions_and_id(sandbox, receiver):
    _activity(sandbox, MEDIUM.id, "claims", duplicates=3)

    bodies = wait_until(lambda: len(receiver.bodies()) == 3 and receiver.bodies(), "three notifications")
    for body in bodies:
        assert body["topic"] == "post_purchase"
        assert body["actions"] == ["claims"]
        assert "id" in body and "_id" not in body
        assert body["application_id"] == SANDBOX_APP.app_id
    # The user_id type still varies.
    assert {type(body["user_id"]) for body in bodies} == {int, str}


def test_every_change_gets_a_resource_of_its_own(sandbox, receiver):
    first = _activity(sandbox, MEDIUM.id, "orders_v2")
    second = _activity(sandbox, MEDIUM.id, "orders_v2")

    assert first["resource"] != second["resource"]


# --- Activity and the searches ------------------------------------------------------------------------


def _freeze(sandbox):
    """Stop the sandbox's data clock: orders neither appear nor change status meanwhile."""
    now = time.time()
    sandbox.state.clock = lambda: now
    return now


def _counts(sandbox, seller, token):
    items = _get(sandbox, f"/users/{seller.id}/items/search", token, status="active", limit=100).json()
    now = datetime.fromtimestamp(sandbox.state.now(), UTC)
    from_ = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000-00:00")
    orders = _get(
        sandbox,
        "/orders/search",
        token,
        seller=seller.id,
        **{"order.status": STANDING, "order.date_created.from": from_},
    ).json()
    questions = _get(
        sandbox, "/questions/search", token, seller_id=seller.id, status="UNANSWERED", api_version=4
    ).json()
    claims = _get(
        sandbox,
        "/post-purchase/v1/claims/search",
        token,
        status="opened",
        **{"players.role": "respondent", "players.user_id": seller.id},
    ).json()
    assert len(items["results"]) == min(items["paging"]["total"], 100)
    assert len(questions["questions"]) == min(questions["total"], 50)
    assert len(claims["data"]) == min(claims["paging"]["total"], 30)
    return {
        "listings": items["paging"]["total"],
        "orders": orders["paging"]["total"],
        "questions": questions["total"],
        "claims": claims["paging"]["total"],
    }


def test_activity_moves_the_counts_and_lists_of_the_searches(sandbox):
    token = _token(sandbox)
    now = _freeze(sandbox)
    orders = standing_orders(MEDIUM, since=now - 30 * 86400, now=now)  # the schedule's, about MEDIUM.orders
    assert _counts(sandbox, MEDIUM, token) == {
        "listings": MEDIUM.listings,
        "orders": orders,
        "questions": MEDIUM.questions,
        "claims": MEDIUM.claims,
    }

    _activity(sandbox, MEDIUM.id, "questions", change=2)
    _activity(sandbox, MEDIUM.id, "orders_v2", change=3)
    _activity(sandbox, MEDIUM.id, "items")
    last = _activity(sandbox, MEDIUM.id, "claims", change=-1)

    expected = {
        "listings": MEDIUM.listings + 1,
        "orders": orders + 3,
        "questions": MEDIUM.questions + 2,
        "claims": MEDIUM.claims - 1,
    }
    assert last["seller"] == expected
    assert _counts(sandbox, MEDIUM, token) == expected
    sellers = requests.get(f"{sandbox.url}/_sandbox/sellers", timeout=TIMEOUT).json()
    assert next(s for s in sellers if s["id"] == MEDIUM.id)["questions"] == MEDIUM.questions + 2
    # Other sellers are untouched.
    assert _counts(sandbox, BAIRES, _token(sandbox, BAIRES.id))["questions"] == BAIRES.questions


def test_a_size_never_goes_below_zero(sandbox):
    token = _token(sandbox, NEW.id)

    assert _activity(sandbox, NEW.id, "questions", change=-1)["seller"]["questions"] == 0
    assert _activity(sandbox, NEW.id, "questions", change=1)["seller"]["questions"] == 1

    assert _counts(sandbox, NEW, token)["questions"] == 1


def test_reset_forgets_activity_and_notifications(sandbox, receiver):
    token = _token(sandbox)
    _control(sandbox, "config", drop_notifications=1)
    _activity(sandbox, MEDIUM.id, "questions", change=5)

    _control(sandbox, "reset")

    report = _deliveries(sandbox)
    assert (report["deliveries"], report["missed"]) == ([], 0)
    token = _token(sandbox)  # reset forgot the tokens too
    assert _counts(sandbox, MEDIUM, token)["questions"] == MEDIUM.questions
    assert _missed_feeds(sandbox, token).json() == {"messages": []}


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": MEDIUM.id, "topic": "payments"},
        {"user_id": MEDIUM.id},
        {"user_id": 999, "topic": "questions"},  # not a seller the sandbox offers
        {"topic": "questions"},
        {"user_id": MEDIUM.id, "topic": "questions", "change": "1"},
        {"user_id": MEDIUM.id, "topic": "questions", "change": True},
        {"user_id": MEDIUM.id, "topic": "questions", "duplicates": 0},
        {"user_id": MEDIUM.id, "topic": "questions", "duplicates": 21},
        {"user_id": MEDIUM.id, "topic": ["questions"]},
    ],
)
def test_activity_control_rejects_bad_input(sandbox, receiver, body):
    response = _post_control(sandbox, "activity", **body)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert _deliveries(sandbox)["deliveries"] == []


def test_without_a_url_nothing_is_sent_and_nothing_is_missed(sandbox, receiver):
    _control(sandbox, "config", notifications_url=None, drop_notifications=1)
    token = _token(sandbox)
    now = _freeze(sandbox)

    answer = _activity(sandbox, MEDIUM.id, "orders_v2")

    assert answer["notifications"] == []
    # The change happened all the same: one more sale than the schedule's.
    assert answer["seller"]["orders"] == standing_orders(MEDIUM, since=now - 30 * 86400, now=now) + 1
    assert _deliveries(sandbox) == {"deliveries": [], "missed": 0}
    assert _missed_feeds(sandbox, token).json() == {"messages": []}
    assert _control(sandbox, "config")["drop_notifications"] == 1  # not used up
    assert receiver.posts == []
    stats = sandbox.state.stats()
    assert (stats["notifications_sent"], stats["notifications_missed"]) == (0, 0)


# --- Delivery, retries, missed feeds ------------------------------------------------------------------


def test_a_500_is_retried_with_attempts_increasing_and_the_same_id(sandbox, receiver):
    receiver.answers = [(500, 0), (503, 0)]

    _activity(sandbox, MEDIUM.id, "questions")

    report = _settled(sandbox, 1)
    assert report["deliveries"][0]["status"] == "delivered"
    assert report["deliveries"][0]["attempts"] == 3
    assert report["deliveries"][0]["http_code"] == 200
    bodies = receiver.bodies()
    assert [body["attempts"] for body in bodies] == [1, 2, 3]
    assert len({_notification_id(body) for body in bodies}) == 1
    assert len({body["received"] for body in bodies}) == 1
    assert [body["sent"] for body in bodies] == sorted(body["sent"] for body in bodies)
    stats = sandbox.state.stats()
    assert (stats["notifications_sent"], stats["notifications_delivered"], stats["notifications_missed"]) == (
        1,
        1,
        0,
    )


def test_a_200_slower_than_the_deadline_counts_as_failed(sandbox, receiver):
    _control(sandbox, "config", notification_timeout_ms=300)
    receiver.answers = [(200, 0.6)]  # a 200, but too late

    _activity(sandbox, MEDIUM.id, "orders_v2")

    report = _settled(sandbox, 1)
    assert report["deliveries"][0]["status"] == "delivered"
    bodies = receiver.bodies()
    # Retried although the answer was a 200 (later answers are quick, but a busy machine
    # may make one of them late too: only the start of the sequence is certain).
    assert [body["attempts"] for body in bodies] == list(range(1, len(bodies) + 1))
    assert len(bodies) >= 2
    assert len({_notification_id(body) for body in bodies}) == 1


def test_a_late_200_ends_in_the_missed_feed_with_its_status_and_time(sandbox, receiver):
    _control(sandbox, "config", notification_timeout_ms=300, notification_retries=0)
    receiver.answers = [(200, 0.6)]
    token = _token(sandbox)

    _activity(sandbox, MEDIUM.id, "items")

    assert _settled(sandbox, 1)["deliveries"][0]["status"] == "missed"
    (message,) = _missed_feeds(sandbox, token, topic="items", site_id="MLB").json()["messages"]
    assert message["attempts"] == 1
    assert message["response"]["http_code"] == 200
    assert message["response"]["req_time"] >= 300


def test_after_the_retries_the_notification_is_in_the_missed_feeds(sandbox, receiver):
    _control(sandbox, "config", notification_retries=2)
    receiver.status = 500
    token = _token(sandbox)

    answer = _activity(sandbox, MEDIUM.id, "questions")

    report = _settled(sandbox, 1)
    assert report["missed"] == 1
    assert report["deliveries"][0]["status"] == "missed"
    assert report["deliveries"][0]["http_code"] == 500
    assert [body["attempts"] for body in receiver.bodies()] == [1, 2, 3]
    response = _missed_feeds(sandbox, token)
    assert response.status_code == 200
    assert set(response.json()) == {"messages"}  # §6.5: no paging block
    (message,) = response.json()["messages"]
    sent = answer["notifications"][0]
    for field in ("resource", "user_id", "topic", "application_id", "received"):
        assert message[field] == sent[field]
    assert _notification_id(message) == _notification_id(sent)
    assert message["attempts"] == 3
    request = message["request"]
    assert request["url"] == receiver.url
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["accept"] == "application/json"
    assert json.loads(request["data"]) == receiver.bodies()[-1]
    assert request["headers"]["content-length"] == len(request["data"].encode())
    assert message["response"]["http_code"] == 500
    assert message["response"]["body"] == "boom"
    assert isinstance(message["response"]["req_time"], int)
    stats = sandbox.state.stats()
    assert (stats["notifications_sent"], stats["notifications_delivered"], stats["notifications_missed"]) == (
        1,
        0,
        1,
    )
    assert stats["by_kind"]["missed_feeds"] == 1


def test_an_unreachable_app_is_missed_with_http_code_0(sandbox):
    _control(
        sandbox, "config", notifications_url=f"http://127.0.0.1:{_closed_port()}/hook", notification_retries=1
    )
    token = _token(sandbox)

    _activity(sandbox, MEDIUM.id, "orders_v2")

    report = _settled(sandbox, 1)
    assert report["deliveries"][0]["http_code"] == 0
    (message,) = _missed_feeds(sandbox, token).json()["messages"]
    assert (message["attempts"], message["response"]["http_code"]) == (2, 0)


def test_dropped_notifications_go_straight_to_the_missed_feeds(sandbox, receiver):
    _control(sandbox, "config", drop_notifications=2)
    token = _token(sandbox)

    answer = _activity(sandbox, MEDIUM.id, "orders_v2", duplicates=3)

    report = _settled(sandbox, 3)
    assert sorted(d["status"] for d in report["deliveries"]) == ["delivered", "missed", "missed"]
    assert _control(sandbox, "config")["drop_notifications"] == 0
    assert len(receiver.bodies()) == 1
    messages = _missed_feeds(sandbox, token).json()["messages"]
    assert [_notification_id(m) for m in messages] == [
        _notification_id(b) for b in answer["notifications"][:2]
    ]
    for message in messages:
        # As if ML had tried for its whole hour: every attempt, never an answer.
        assert message["attempts"] == 1 + 3
        assert message["response"]["http_code"] == 0
    assert sandbox.state.stats()["notifications_missed"] == 2


def test_a_stuck_app_does_not_hold_up_the_api(sandbox, receiver):
    receiver.gate = threading.Event()
    _control(sandbox, "config", notification_timeout_ms=10_000)
    token = _token(sandbox)

    _activity(sandbox, MEDIUM.id, "questions")
    wait_until(lambda: receiver.posts, "the delivery to reach the app")

    # The postman is stuck in its POST; the API and the controls still answer.
    assert _get(sandbox, "/users/me", token).status_code == 200
    assert _activity(sandbox, MEDIUM.id, "questions")["seller"]["questions"] == MEDIUM.questions + 2
    assert [d["status"] for d in _deliveries(sandbox)["deliveries"]] == ["pending", "pending"]
    receiver.gate.set()
    assert [d["status"] for d in _settled(sandbox, 2)["deliveries"]] == ["delivered", "delivered"]


# --- GET /missed_feeds --------------------------------------------------------------------------------


@pytest.fixture
def missed(sandbox):
    """Twelve missed notifications: questions of MEDIUM, then items of MEDIUM (MLB) and BAIRES (MLA)."""
    _control(sandbox, "config", drop_notifications=12)
    resources = [_activity(sandbox, MEDIUM.id, "questions")["resource"] for _ in range(8)]
    resources += [_activity(sandbox, MEDIUM.id, "items")["resource"] for _ in range(2)]
    resources += [_activity(sandbox, BAIRES.id, "items")["resource"] for _ in range(2)]
    return resources


def test_missed_feeds_needs_a_token(sandbox, missed):
    response = _missed_feeds(sandbox, None)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert _missed_feeds(sandbox, "APP_USR-not-a-token").status_code == 401


def test_missed_feeds_refuses_another_apps_id(sandbox, missed):
    token = _token(sandbox)

    response = _missed_feeds(sandbox, token, app_id=1234567890)

    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert _missed_feeds(sandbox, token, app_id=SANDBOX_CLIENT_ID).status_code == 200
    assert _get(sandbox, "/missed_feeds", token).status_code == 400  # app_id is required


def test_any_connected_sellers_token_reads_the_apps_missed_feeds(sandbox, missed):
    # Which token ML wants is not documented (§11.1): any seller's token of the app works.
    response = _missed_feeds(sandbox, _token(sandbox, NEW.id), limit=200)

    assert [m["resource"] for m in response.json()["messages"]] == missed


def test_missed_feeds_items_topic_needs_a_site(sandbox, missed):
    token = _token(sandbox)

    response = _missed_feeds(sandbox, token, topic="items")

    assert response.status_code == 400
    assert response.json()["status"] == 400
    brazil = _missed_feeds(sandbox, token, topic="items", site_id="MLB").json()["messages"]
    argentina = _missed_feeds(sandbox, token, topic="items", site_id="MLA").json()["messages"]
    assert [m["resource"] for m in brazil] == missed[8:10]
    assert [m["resource"] for m in argentina] == missed[10:12]
    questions = _missed_feeds(sandbox, token, topic="questions", limit=50).json()["messages"]
    assert [m["resource"] for m in questions] == missed[:8]


def test_missed_feeds_pages_oldest_first_with_offset_and_limit(sandbox, missed):
    token = _token(sandbox)

    first = _missed_feeds(sandbox, token).json()["messages"]
    second = _missed_feeds(sandbox, token, offset=10).json()["messages"]
    middle = _missed_feeds(sandbox, token, offset=3, limit=4).json()["messages"]

    assert [m["resource"] for m in first] == missed[:10]  # ten by default
    assert [m["resource"] for m in second] == missed[10:]
    assert [m["resource"] for m in middle] == missed[3:7]
    assert _missed_feeds(sandbox, token, limit=201).status_code == 400
    assert _missed_feeds(sandbox, token, limit=0).status_code == 400


def test_missed_feeds_keep_two_days(sandbox, missed, monkeypatch):
    token = _token(sandbox)
    real_time = time.time

    class Later:
        monotonic = staticmethod(time.monotonic)
        sleep = staticmethod(time.sleep)

        @staticmethod
        def time():
            return real_time() + 2 * 86400 + 60

    monkeypatch.setattr(notifications_module, "time", Later)

    assert _missed_feeds(sandbox, token).json() == {"messages": []}
    assert _deliveries(sandbox)["missed"] == 0


# --- The activity knob, knobs, stop -------------------------------------------------------------------


def test_activity_seconds_makes_demo_sellers_move_by_themselves(sandbox, receiver):
    demo_ids = {seller.id for seller in DEMO_SELLERS}

    def sizes():
        sellers = requests.get(f"{sandbox.url}/_sandbox/sellers", timeout=TIMEOUT).json()
        return {s["id"]: (s["listings"], s["orders"], s["questions"], s["claims"]) for s in sellers}

    before = sizes()
    _control(sandbox, "config", activity_seconds=0.05)

    bodies = wait_until(lambda: len(receiver.bodies()) >= 3 and receiver.bodies(), "three notifications")
    _control(sandbox, "config", activity_seconds=None)

    assert sizes() != before
    for body in bodies:
        assert int(body["user_id"]) in demo_ids
        assert body["topic"] in {"questions", "orders_v2", "items", "post_purchase"}
        assert body["application_id"] == SANDBOX_APP.app_id


@pytest.mark.parametrize(
    "knobs",
    [
        {"notifications_url": "ftp://127.0.0.1/hook"},
        {"notifications_url": "not a url"},
        {"notifications_url": ""},
        {"notification_retries": 21},
        {"notification_retries": -1},
        {"notification_retry_seconds": 0},
        {"notification_timeout_ms": 0},
        {"notification_timeout_ms": 1.5},
        {"drop_notifications": -1},
        {"activity_seconds": -1},
        {"activity_seconds": "1"},
    ],
)
def test_config_rejects_invalid_notification_knobs(sandbox, knobs):
    response = _post_control(sandbox, "config", **knobs)

    assert response.status_code == 400, response.text


def test_config_accepts_notification_knobs(sandbox):
    config = _control(
        sandbox,
        "config",
        notifications_url="https://app.example.com/ml/hook",
        notification_retries=8,
        notification_retry_seconds=2,
        notification_timeout_ms=500,
        drop_notifications=3,
        activity_seconds=0,
    )

    assert config["notifications_url"] == "https://app.example.com/ml/hook"
    assert (config["notification_retries"], config["notification_retry_seconds"]) == (8, 2.0)
    assert (config["drop_notifications"], config["activity_seconds"]) == (3, None)


def _sandbox_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("ml-sandbox")]


def test_stop_ends_every_thread_and_delivers_nothing_after(receiver):
    before = set(_sandbox_threads())
    receiver.status = 500
    server = start_sandbox(
        port=0, notifications_url=receiver.url, notification_retry_seconds=0.2, activity_seconds=0.05
    )
    try:
        assert {thread.name for thread in _sandbox_threads()} >= {"ml-sandbox-postman", "ml-sandbox-activity"}
        wait_until(lambda: receiver.posts, "a first delivery")
    finally:
        server.stop()

    assert set(_sandbox_threads()) - before == set()
    posts = len(receiver.posts)
    time.sleep(0.5)  # longer than the retry delay and ten activity ticks
    assert len(receiver.posts) == posts
    assert any(d["status"] == "pending" for d in server.state.notifications.report()["deliveries"])


def test_ml_sandbox_command_posts_notifications_and_makes_activity(receiver):
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    process = subprocess.Popen(
        [
            sys.executable,
            str(manage),
            "ml_sandbox",
            "--port",
            "0",
            "--state-file",
            "",
            "--notifications-url",
            receiver.url,
            "--activity-seconds",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        output = ""
        while "Quit with CONTROL-C." not in output:
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"ml_sandbox did not start:\n{output}{process.stderr.read()}")
            output += line
        assert f"Notifications: {receiver.url}" in output
        assert "Activity: every 0.1 s" in output

        body = wait_until(lambda: receiver.bodies(), "a notification from the demo activity")[0]

        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, err) == (0, "")
    assert "Sandbox stopped." in out
    assert body["application_id"] == SANDBOX_APP.app_id
