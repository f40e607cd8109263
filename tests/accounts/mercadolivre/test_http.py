"""http.py: the one choke point to ML (headers, timeouts, error mapping, retries, counting)."""

import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts.mercadolivre import http, ratelimit
from accounts.mercadolivre.errors import MLBadResponse, MLRateLimited, MLUnauthorized, MLUnavailable
from tests.mlmock import API, ml_error

# Every answer registered on the `ml` mock must be asked for.
pytestmark = pytest.mark.ml_every_answer_used

TOKEN = "APP_USR-1234567890123456-031418-0a1b2c3d4e5f60718293a4b5c6d7e8f9-987654321"


def test_request_sends_the_token_only_as_a_bearer_header(ml):
    ml.get(f"{API}/users/me", json={"id": 1})

    http.request_json("GET", "/users/me", token=TOKEN)

    request = ml.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request.url
    assert "access_token" not in request.url


def test_request_identifies_the_client_and_asks_for_json(ml):
    ml.get(f"{API}/sites", json={"ok": True})

    http.request_json("GET", "/sites")

    headers = ml.calls[0].request.headers
    assert re.fullmatch(r"MLAccounts/[\w.+-]+ \(\+self-hosted\)", headers["User-Agent"])
    assert headers["Accept"] == "application/json"
    assert "Authorization" not in headers


def test_a_cookie_one_seller_was_sent_never_rides_along_with_the_next_call(ml):
    # The session is the thread's, shared by every seller it syncs: it keeps no cookie jar.
    ml.get(f"{API}/users/me", json={"id": 1}, headers={"Set-Cookie": "seller=1; Path=/"})
    ml.get(f"{API}/users/2/items/search", json={"paging": {"total": 0}})

    http.request_json("GET", "/users/me", token=TOKEN)
    http.request_json("GET", "/users/2/items/search", token="APP_USR-another-seller", params={"limit": 1})

    assert "Cookie" not in ml.calls[1].request.headers
    assert not http.get_session().cookies
    assert ml.calls[1].request.url == f"{API}/users/2/items/search?limit=1"


def test_request_always_passes_the_configured_timeouts(ml, settings):
    settings.ML_CONNECT_TIMEOUT = 1.5
    settings.ML_READ_TIMEOUT = 9.0
    ml.get(f"{API}/users/me", json={"id": 1})

    http.request_json("GET", "/users/me", token=TOKEN)

    assert ml.calls[0].request.req_kwargs["timeout"] == (1.5, 9.0)
    assert http.timeouts() == (1.5, 9.0)


def test_request_joins_paths_to_the_api_url(ml, settings):
    settings.ML_API_URL = "http://127.0.0.1:8001/"
    ml.get("http://127.0.0.1:8001/users/me", json={"id": 1})

    assert http.request_json("GET", "users/me", token=TOKEN) == {"id": 1}


def test_request_passes_query_params(ml):
    ml.get(f"{API}/orders/search", json={"paging": {"total": 0}})

    http.request_json("GET", "/orders/search", token=TOKEN, params={"seller": 42, "limit": 1})

    query = parse_qs(urlsplit(ml.calls[0].request.url).query)
    assert query == {"seller": ["42"], "limit": ["1"]}


def test_request_form_encodes_data(ml):
    ml.post(f"{API}/oauth/token", json={"ok": True})

    http.request_json("POST", "/oauth/token", data={"grant_type": "refresh_token", "a": "b c"})

    request = ml.calls[0].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {"grant_type": ["refresh_token"], "a": ["b c"]}
    assert urlsplit(request.url).query == ""


def test_absolute_url_on_the_api_host_is_allowed(ml):
    ml.get(f"{API}/items/MLB1", json={"id": "MLB1"})

    assert http.request_json("GET", f"{API}/items/MLB1", token=TOKEN) == {"id": "MLB1"}


def test_token_is_never_sent_to_another_host(ml):
    with pytest.raises(ValueError, match="ML_API_URL"):
        http.request_json("GET", "https://evil.example.com/users/me", token=TOKEN)

    assert len(ml.calls) == 0


def test_read_timeout_becomes_unavailable(ml):
    ml.get(f"{API}/users/me", body=requests.ReadTimeout("read timed out"))

    with pytest.raises(MLUnavailable) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.code == "timeout"
    assert caught.value.status is None


def test_connect_timeout_becomes_unavailable(ml):
    ml.post(f"{API}/oauth/token", body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(MLUnavailable) as caught:
        http.request_json("POST", "/oauth/token", data={"grant_type": "refresh_token"})

    assert caught.value.code == "timeout"


def test_connection_error_becomes_unavailable(ml):
    ml.get(f"{API}/users/me", body=requests.ConnectionError("connection refused"))

    with pytest.raises(MLUnavailable) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.code == "connection_error"


def test_non_json_success_body_is_a_bad_response(ml):
    ml.get(f"{API}/users/me", body="<html>maintenance</html>", status=200, content_type="text/html")

    with pytest.raises(MLBadResponse) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.status == 200


def test_json_that_is_not_an_object_is_a_bad_response(ml):
    ml.get(f"{API}/users/me", json=[1, 2, 3])

    with pytest.raises(MLBadResponse):
        http.request_json("GET", "/users/me", token=TOKEN)


def test_206_counts_as_success_for_the_users_api(ml):
    ml.get(f"{API}/users/me", json={"id": 1}, status=206)

    assert http.request_json("GET", "/users/me", token=TOKEN) == {"id": 1}


def test_206_is_unexpected_elsewhere(ml):
    ml.get(f"{API}/orders/search", json={"paging": {"total": 1}}, status=206)

    with pytest.raises(MLBadResponse) as caught:
        http.request_json("GET", "/orders/search", token=TOKEN)

    assert caught.value.status == 206


def test_redirects_are_not_followed(ml):
    ml.get(f"{API}/users/me", status=301, headers={"Location": "https://elsewhere.example.com/"})

    with pytest.raises(MLBadResponse) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.status == 301
    assert len(ml.calls) == 1


def test_error_status_is_mapped_by_error_from_response(ml):
    ml.get(f"{API}/users/me", json=ml_error("invalid_token"), status=401)

    with pytest.raises(MLUnauthorized) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.message == "invalid_token"


@pytest.mark.parametrize(("headers", "expected"), [({"Retry-After": "3"}, [3.0]), ({}, [None])])
def test_429_penalizes_the_shared_budget(ml, monkeypatch, headers, expected):
    penalties = []
    monkeypatch.setattr(ratelimit, "penalize", penalties.append)
    ml.get(f"{API}/users/me", json=ml_error("too_many_requests"), status=429, headers=headers)

    with pytest.raises(MLRateLimited) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert penalties == expected
    assert caught.value.retry_after == expected[0]
    assert len(ml.calls) == 1  # a 429 is never retried by the session


def test_request_takes_budget_before_sending(ml, monkeypatch):
    taken = []
    monkeypatch.setattr(ratelimit, "acquire", lambda **kwargs: taken.append(len(ml.calls)))
    ml.get(f"{API}/users/me", json={"id": 1})
    ml.get(f"{API}/sites", json={"ok": True})

    http.request_json("GET", "/users/me", token=TOKEN)
    http.request_json("GET", "/sites", budget=False)

    assert taken == [0]


def test_exhausted_budget_sends_nothing(ml, settings):
    settings.ML_REQUESTS_PER_SECOND = 1
    settings.ML_RATE_LIMIT_MAX_WAIT = 0
    ml.get(f"{API}/users/me", json={"id": 1})
    http.request_json("GET", "/users/me", token=TOKEN)

    with http.count_calls() as counter, pytest.raises(MLRateLimited) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.code == "budget_exhausted"
    assert len(ml.calls) == 1
    assert counter.count == 0


def test_get_is_retried_on_503_a_bounded_number_of_times(ml):
    ml.get(f"{API}/users/me", json=ml_error("service_unavailable"), status=503)

    with http.count_calls() as counter, pytest.raises(MLUnavailable) as caught:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.status == 503
    assert len(ml.calls) == 1 + http.RETRY_TOTAL == 3
    assert counter.count == 3


def test_get_retry_recovers_after_one_5xx(ml):
    ml.get(f"{API}/users/me", json=ml_error("internal_error"), status=500)
    ml.get(f"{API}/users/me", json={"id": 7})

    with http.count_calls() as counter:
        assert http.request_json("GET", "/users/me", token=TOKEN) == {"id": 7}

    assert len(ml.calls) == 2
    assert counter.count == 2


def test_post_is_never_retried_on_5xx(ml):
    ml.post(f"{API}/oauth/token", json=ml_error("service_unavailable"), status=503)

    with pytest.raises(MLUnavailable):
        http.request_json("POST", "/oauth/token", data={"grant_type": "refresh_token"})

    assert len(ml.calls) == 1


def test_calls_made_counts_every_request_in_this_context(ml):
    ml.get(f"{API}/sites", json={"ok": True})
    before = http.calls_made()

    with http.count_calls() as outer:
        http.request_json("GET", "/sites")
        with http.count_calls() as inner:
            http.request_json("GET", "/sites")
            http.request_json("GET", "/sites")
        assert inner.count == 2
        assert outer.count == 3

    http.request_json("GET", "/sites")
    assert outer.count == 3  # frozen when the block ended
    assert http.calls_made() == before + 4


def test_failed_attempts_are_counted_too(ml):
    ml.get(f"{API}/sites", body=requests.ConnectionError("refused"))

    with http.count_calls() as counter, pytest.raises(MLUnavailable):
        http.request_json("GET", "/sites")

    assert counter.count == 1


def test_each_thread_has_its_own_session():
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(http.get_session()))
    thread.start()
    thread.join()

    assert http.get_session() is http.get_session()
    assert sessions[0] is not http.get_session()


def test_session_retries_only_gets():
    retry = http.get_session().get_adapter(API).max_retries

    assert retry.allowed_methods == frozenset({"GET"})
    assert retry.total == 2
    assert retry.respect_retry_after_header is False
    assert retry.raise_on_status is False


def test_logs_show_path_and_status_but_never_the_token(ml, caplog):
    ml.get(f"{API}/users/me", json={"id": 1})
    ml.post(f"{API}/oauth/token", json=ml_error("invalid_grant"), status=400)

    with caplog.at_level(logging.DEBUG):
        http.request_json("GET", "/users/me", token=TOKEN)
        with pytest.raises(Exception, match="Error validating grant"):
            http.request_json("POST", "/oauth/token", data={"refresh_token": "TG-secret-refresh"})

    assert "GET /users/me -> 200" in caplog.text
    assert TOKEN not in caplog.text
    assert "TG-secret-refresh" not in caplog.text
    assert "Bearer" not in caplog.text


# --- Real sockets: what urllib3 retries, proven against a local server ------------------------


class _Handler(BaseHTTPRequestHandler):
    mode = "503"
    hits: list[str] = []

    def _answer(self):
        type(self).hits.append(self.command)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.mode == "drop":
            # Read the request, then hang up without answering: a connection error.
            self.close_connection = True
            return
        body = b'{"message":"unavailable","error":"service_unavailable","status":503,"cause":[]}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format, *args):
        pass


@pytest.fixture(params=["503", "drop"])
def flaky_server(request, settings):
    handler = type("Handler", (_Handler,), {"mode": request.param, "hits": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.ML_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield handler
    server.shutdown()
    server.server_close()


EXPECTED_CODE = {"503": "service_unavailable", "drop": "connection_error"}


def test_real_get_is_retried_on_server_errors_and_dropped_connections(flaky_server, monkeypatch):
    budget = []
    monkeypatch.setattr(ratelimit, "acquire", lambda **kwargs: budget.append(1))

    with pytest.raises(MLUnavailable) as caught, http.count_calls() as counter:
        http.request_json("GET", "/users/me", token=TOKEN)

    assert caught.value.code == EXPECTED_CODE[flaky_server.mode]
    assert flaky_server.hits == ["GET"] * 3
    assert counter.count == 3
    assert len(budget) == 3  # every retry spends the shared budget too


def test_real_post_is_never_retried(flaky_server):
    with pytest.raises(MLUnavailable) as caught, http.count_calls() as counter:
        http.request_json(
            "POST", "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "TG-x"}
        )

    assert caught.value.code == EXPECTED_CODE[flaky_server.mode]
    assert flaky_server.hits == ["POST"]
    assert counter.count == 1


def test_real_retry_stops_when_the_budget_is_exhausted(settings):
    handler = type("Handler", (_Handler,), {"mode": "503", "hits": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings.ML_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.ML_REQUESTS_PER_SECOND = 1
    settings.ML_RATE_LIMIT_MAX_WAIT = 0
    try:
        with pytest.raises(MLRateLimited) as caught:
            http.request_json("GET", "/users/me", token=TOKEN)
    finally:
        server.shutdown()
        server.server_close()

    assert caught.value.code == "budget_exhausted"
    assert handler.hits == ["GET"]


@pytest.mark.parametrize(("method", "attempts"), [("GET", 3), ("POST", 1)])
def test_connection_refused_is_retried_for_get_only(settings, method, attempts):
    # Stock urllib3 would retry a refused connection for any method; a POST must not be.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ML_API_URL = f"http://127.0.0.1:{port}"

    with pytest.raises(MLUnavailable) as caught, http.count_calls() as counter:
        http.request_json(
            method, "/oauth/token", data={"grant_type": "refresh_token"} if method == "POST" else None
        )

    assert caught.value.code == "connection_error"
    assert counter.count == attempts
