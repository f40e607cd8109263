"""GET /metrics (mlaccounts/metrics.py) and the counters where things are counted.

The counters are process-wide, so each test reads the difference it makes (`Delta`). ML is the
root conftest's `ml` mock. Multiprocess mode (PROMETHEUS_MULTIPROC_DIR) is exercised in
subprocesses: the mode is chosen once per process, before any metric exists.
"""

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from importlib import util as importlib_util
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import responses
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY, values
from prometheus_client.parser import text_string_to_metric_families
from urllib3 import HTTPResponse

from accounts import tokens
from accounts.mercadolivre import http, ratelimit
from accounts.mercadolivre.errors import MLInvalidGrant, MLRateLimited, MLUnavailable
from accounts.models import MLAccount, Notification
from mlaccounts import metrics, prometheus
from sync import engine, harness, notifications, schedule
from tests.factories import MLAccountFactory
from tests.mlmock import API, TOKEN_URL, RotatingTokenEndpoint, add_counts
from tests.notification_helpers import APP_ID, SECRET, general_body, use_fresh_cache

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"
ROOT = Path(settings.BASE_DIR)
FAMILIES = {
    "mlaccounts_syncs": "counter",
    "mlaccounts_ml_requests": "counter",
    "mlaccounts_ml_budget_tokens": "counter",
    "mlaccounts_ml_budget_wait_seconds": "counter",
    "mlaccounts_ml_budget_refused": "counter",
    "mlaccounts_ml_budget_penalties": "counter",
    "mlaccounts_ml_budget_allowed_per_second": "gauge",
    "mlaccounts_token_refreshes": "counter",
    "mlaccounts_notifications_received": "counter",
    "mlaccounts_notifications_processed": "counter",
    "mlaccounts_notification_lag_seconds": "histogram",
    "mlaccounts_accounts": "gauge",
    "mlaccounts_queue_depth": "gauge",
    "mlaccounts_beat_heartbeat_age_seconds": "gauge",
}


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client, **headers):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)


def samples(response) -> dict:
    """{(sample name, frozenset of labels): value} of a /metrics answer."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """What a block adds to counters (one process: the default registry)."""

    def __init__(self, *series):
        self.series = series
        self.before = [value(name, **labels) for name, labels in series]

    def __call__(self) -> list[float]:
        return [value(name, **labels) - b for (name, labels), b in zip(self.series, self.before, strict=True)]


# --- the guard ----------------------------------------------------------------------------------


def test_unset_token_turns_metrics_off(client, settings):
    settings.METRICS_TOKEN = ""

    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer "}, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}):
        assert client.get("/metrics", **headers).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN],
)
def test_a_missing_or_wrong_token_is_a_401(client, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"mlaccounts_" not in response.content


def test_a_signed_in_user_without_the_token_is_refused_too(client, user):
    client.force_login(user)

    assert client.get("/metrics").status_code == 401


def test_the_right_token_gets_the_text_format_with_no_session_and_no_cookie(client):
    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert not Session.objects.exists()
    # The scheme is case-insensitive, as RFC 7235 has it.
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


def test_only_get(client):
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_every_family_is_exported(client):
    types = {
        family.name: family.type for family in text_string_to_metric_families(scrape(client).content.decode())
    }

    assert {name: types.get(name) for name in FAMILIES} == FAMILIES


def test_a_scrape_makes_one_query_whatever_the_fleet(client, user, django_assert_num_queries):
    with django_assert_num_queries(1):
        scrape(client)
    for status in ("active", "active", "paused", "expired", "error"):
        MLAccountFactory(owner=user, status=status)

    with django_assert_num_queries(1):
        response = scrape(client)

    found = samples(response)
    for status, n in {"active": 2, "paused": 1, "expired": 1, "error": 1}.items():
        assert found[("mlaccounts_accounts", frozenset({("status", status)}))] == n


def test_health_stays_public_and_says_nothing_about_accounts(client, ml_account):
    response = client.get("/health/")

    assert response.status_code == 200
    assert set(response.json()) == {"status", "database", "redis", "lastHeartbeat"}


# --- the gauges read at scrape time ------------------------------------------------------------------


def test_heartbeat_age_is_the_seconds_since_the_health_check(client):
    at = timezone.now() - timedelta(minutes=3)
    schedule.heartbeat_write(at=at, status_counts={})

    assert metrics.heartbeat_age(now=at + timedelta(seconds=90)) == 90
    assert 180 <= samples(scrape(client))[("mlaccounts_beat_heartbeat_age_seconds", frozenset())] < 3600


def test_no_heartbeat_is_an_infinite_age(client):
    cache.delete(schedule.HEARTBEAT_CACHE_KEY)

    assert samples(scrape(client))[("mlaccounts_beat_heartbeat_age_seconds", frozenset())] == float("inf")


def test_the_budget_allowed_is_the_setting(client, settings):
    settings.ML_REQUESTS_PER_SECOND = 4.5

    assert samples(scrape(client))[("mlaccounts_ml_budget_allowed_per_second", frozenset())] == 4.5


def test_queue_depth_counts_the_filesystem_brokers_messages_of_the_queue(client, settings, tmp_path):
    settings.REDIS_URL = ""
    settings.CELERY_TASK_DEFAULT_QUEUE = "celery"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for name in ("1_a.celery.msg", "2_b.celery.msg", "3_c.other.msg", "4_d.celery.msg.tmp"):
        (tmp_path / name).write_text("{}")

    assert metrics.queue_depth("celery") == 2
    assert samples(scrape(client))[("mlaccounts_queue_depth", frozenset({("queue", "celery")}))] == 2


@pytest.mark.redis
def test_queue_depth_counts_the_redis_lists_of_the_queue_and_its_priorities(settings):
    import redis as redis_client

    queue = f"metrics-test-{os.getpid()}"
    client = redis_client.Redis.from_url(settings.REDIS_URL)
    try:
        client.rpush(queue, "a", "b")
        client.rpush(f"{queue}\x06\x169", "c")
        client.rpush(f"{queue}-other", "d")

        assert metrics.queue_depth(queue) == 3
    finally:
        client.delete(queue, f"{queue}\x06\x169", f"{queue}-other")


def test_an_unreachable_broker_leaves_the_queue_out_and_the_rest_in(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    found = {name for name, _ in samples(scrape(client))}

    assert "mlaccounts_queue_depth" not in found
    assert {"mlaccounts_accounts", "mlaccounts_syncs_total"} <= found


# --- the counters, moved by real actions ------------------------------------------------------------


def test_a_sync_counts_its_outcome_and_each_ml_call_by_endpoint(client, ml_account, ml):
    add_counts(ml)
    delta = Delta(
        ("mlaccounts_syncs_total", {"outcome": "success"}),
        (
            "mlaccounts_ml_requests_total",
            {"method": "GET", "endpoint": "/users/{id}/items/search", "status": "200"},
        ),
        ("mlaccounts_ml_requests_total", {"method": "GET", "endpoint": "/orders/search", "status": "200"}),
        ("mlaccounts_ml_requests_total", {"method": "GET", "endpoint": "/users/{id}", "status": "200"}),
    )
    before = samples(scrape(client))

    result = engine.sync_account(ml_account.pk)

    assert result.ok
    assert delta() == [1, 1, 1, 1]
    after = samples(scrape(client))
    calls = sum(v for (name, _), v in after.items() if name == "mlaccounts_ml_requests_total") - sum(
        v for (name, _), v in before.items() if name == "mlaccounts_ml_requests_total"
    )
    assert calls == result.ml_calls == len(ml.calls)


def test_a_failed_sync_counts_failed_and_every_attempt_with_the_status_ml_answered(ml_account, ml):
    add_counts(ml, status=503)
    delta = Delta(
        ("mlaccounts_syncs_total", {"outcome": "failed"}),
        (
            "mlaccounts_ml_requests_total",
            {"method": "GET", "endpoint": "/users/{id}/items/search", "status": "503"},
        ),
    )

    result = engine.sync_account(ml_account.pk)

    assert result.outcome == engine.Outcome.FAILED
    # The first count's GET, and urllib3's two retries of it: each an attempt ML answered.
    assert delta() == [1, 1 + http.RETRY_TOTAL] == [1, result.ml_calls]


def test_skipped_and_missing_syncs_are_counted(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=timezone.now())
    delta = Delta(
        ("mlaccounts_syncs_total", {"outcome": "skipped"}), ("mlaccounts_syncs_total", {"outcome": "missing"})
    )

    engine.sync_account(ml_account.pk)
    engine.sync_account("6f1c7c1e-0000-4000-8000-000000000000")

    assert delta() == [1, 1]


def test_timeouts_and_connection_errors_are_statuses_of_their_own(ml):
    ml.add(responses.GET, API + "/users/123", body=requests.exceptions.ReadTimeout())
    ml.add(responses.GET, API + "/users/456", body=requests.exceptions.ConnectionError())
    delta = Delta(
        ("mlaccounts_ml_requests_total", {"method": "GET", "endpoint": "/users/{id}", "status": "timeout"}),
        ("mlaccounts_ml_requests_total", {"method": "GET", "endpoint": "/users/{id}", "status": "error"}),
    )

    for path in ("/users/123", "/users/456"):
        with pytest.raises(MLUnavailable):
            http.request_json("GET", path, token="APP_USR-1", budget=False)

    assert delta() == [1, 1]


def test_a_get_retried_by_urllib3_counts_the_attempt_that_failed(settings):
    retry = http._new_session().get_adapter(API).max_retries
    delta = Delta(
        ("mlaccounts_ml_requests_total", {"method": "GET", "endpoint": "/orders/{id}", "status": "503"}),
    )

    retry.increment("GET", "/orders/2000009876543210?x=1", response=HTTPResponse(status=503))

    assert delta() == [1]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/users/me", "/users/me"),
        ("/users/123456789", "/users/{id}"),
        ("/users/123456789/items/search", "/users/{id}/items/search"),
        ("/orders/2000009876543210", "/orders/{id}"),
        ("/orders/search", "/orders/search"),
        ("/questions/search", "/questions/search"),
        ("/questions/13260545667", "/questions/{id}"),
        ("/items/MLB1054990648", "/items/{id}"),
        ("/post-purchase/v1/claims/5108684499/detail", "/post-purchase/v1/claims/{id}/detail"),
        ("/post-purchase/v1/claims/search", "/post-purchase/v1/claims/search"),
        ("/oauth/token", "/oauth/token"),
        ("/missed_feeds", "/missed_feeds"),
        ("/sites/MLB/categories", "/sites/MLB/categories"),
        ("/x/" + "a" * 50, "/x/{id}"),
    ],
)
def test_paths_become_templates_of_bounded_cardinality(path, template):
    assert http.endpoint_template(path) == template


def test_a_token_refresh_counts_success_and_its_call(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() + timedelta(minutes=5))
    RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token).install(ml)
    delta = Delta(
        ("mlaccounts_token_refreshes_total", {"outcome": "success"}),
        ("mlaccounts_ml_requests_total", {"method": "POST", "endpoint": "/oauth/token", "status": "200"}),
    )

    tokens.get_fresh_access_token(ml_account.pk)

    assert delta() == [1, 1]


def test_a_refused_refresh_counts_invalid_grant(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() + timedelta(minutes=5))
    ml.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant", "status": 400, "cause": []})
    delta = Delta(
        ("mlaccounts_token_refreshes_total", {"outcome": "invalid_grant"}),
        ("mlaccounts_ml_requests_total", {"method": "POST", "endpoint": "/oauth/token", "status": "400"}),
    )

    with pytest.raises(MLInvalidGrant):
        tokens.get_fresh_access_token(ml_account.pk)

    assert delta() == [1, 1]


def test_a_refresh_ml_could_not_answer_counts_error(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() + timedelta(minutes=5))
    ml.add(responses.POST, TOKEN_URL, status=503, json={"message": "down", "status": 503})
    delta = Delta(("mlaccounts_token_refreshes_total", {"outcome": "error"}))

    with pytest.raises(MLUnavailable):
        tokens.get_fresh_access_token(ml_account.pk)

    assert delta() == [1]


def test_a_webhook_notification_is_counted_received_then_processed_with_its_lag(
    client, settings, ml_account, ml, kicked
):
    use_fresh_cache(settings)
    settings.ML_WEBHOOK_SECRET = SECRET
    settings.ML_APPLICATION_ID = APP_ID
    add_counts(ml, products=13)
    delta = Delta(
        ("mlaccounts_notifications_received_total", {"source": "webhook", "outcome": "stored"}),
        ("mlaccounts_notifications_received_total", {"source": "webhook", "outcome": "invalid"}),
        ("mlaccounts_notifications_processed_total", {"outcome": "done"}),
        ("mlaccounts_notification_lag_seconds_count", {}),
    )
    delta_lag = Delta(
        ("mlaccounts_notification_lag_seconds_bucket", {"le": "120.0"}),
        ("mlaccounts_notification_lag_seconds_sum", {}),
        ("mlaccounts_notification_lag_seconds_bucket", {"le": "30.0"}),
    )
    url = f"/webhooks/mercadolivre/{SECRET}/"
    received = timezone.now() - timedelta(seconds=40)  # ML received it 40 s ago
    body = general_body(
        user_id=ml_account.ml_user_id,
        topic="items",
        resource="/items/MLB1054990648",
        received=received.isoformat(timespec="milliseconds"),
    )

    assert client.post(url, data=json.dumps(body), content_type="application/json").status_code == 200
    assert client.post(url, data="not json", content_type="application/json").status_code == 400
    assert delta()[:3] == [1, 1, 0]
    Notification.objects.update(next_attempt_at=timezone.now())

    notifications.process_account(ml_account.pk)

    assert delta() == [1, 1, 1, 1]
    ml_account.refresh_from_db()
    assert ml_account.cached_products == 13
    # The lag observed is the one the row stores: 40 s and a little (the bucket up to 120 s).
    lag = Notification.objects.get().lag_ms / 1000
    assert lag >= 40
    assert delta_lag() == [1, lag, 0]


def test_a_foreign_notification_is_counted_foreign(ml_account, settings, kicked):
    use_fresh_cache(settings)
    settings.ML_APPLICATION_ID = APP_ID
    delta = Delta(("mlaccounts_notifications_received_total", {"source": "webhook", "outcome": "foreign"}))

    notifications.receive(general_body(user_id=ml_account.ml_user_id, application_id=APP_ID + 1))

    assert delta() == [1]


def test_the_budget_counts_tokens_refusals_and_429_pauses(settings):
    settings.ML_REQUESTS_PER_SECOND = 5
    ratelimit.reset()
    blocked = ratelimit.LocalBucket("metrics-test")
    blocked.block(60)
    delta = Delta(
        ("mlaccounts_ml_budget_tokens_total", {}),
        ("mlaccounts_ml_budget_refused_total", {"reason": "exhausted"}),
        ("mlaccounts_ml_budget_refused_total", {"reason": "no_spare"}),
        ("mlaccounts_ml_budget_penalties_total", {}),
    )

    ratelimit.acquire()
    assert ratelimit.spare()
    with pytest.raises(MLRateLimited):
        ratelimit.acquire(max_wait=0, bucket=blocked)
    assert not ratelimit.spare(max_wait=0, bucket=blocked)
    ratelimit.penalize(1, bucket=ratelimit.LocalBucket("metrics-test-2"))

    assert delta() == [2, 1, 1, 1]


# --- multiprocess mode -----------------------------------------------------------------------------

COUNT = textwrap.dedent(
    """
    import os, sys, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlaccounts.settings"
    django.setup()
    from accounts.mercadolivre import http
    from sync import engine
    engine.SYNCS.labels("success").inc(int(sys.argv[1]))
    http.ML_REQUESTS.labels("GET", "/orders/search", "200").inc()
    print(os.getpid())
    """
)
SCRAPE = textwrap.dedent(
    """
    import os, sys, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlaccounts.settings"
    django.setup()
    from django.test import Client
    response = Client(HTTP_HOST="localhost").get("/metrics", HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
    sys.stdout.write(str(response.status_code) + "\\n" + response.content.decode())
    """
)


def _python(script: str, *args: str, env: dict) -> str:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def test_two_processes_count_into_one_directory_and_a_third_scrapes_the_sum(tmp_path):
    env = harness.environment(
        PROMETHEUS_MULTIPROC_DIR=tmp_path / "metrics", METRICS_TOKEN=TOKEN, DEBUG="false"
    )
    env.pop("DATABASE_URL", None)  # the scrape's one query needs no database here: it is left out

    pids = [_python(COUNT, n, env=env).strip() for n in ("2", "3")]
    status, _, text = _python(SCRAPE, TOKEN, env=env).partition("\n")

    assert status == "200"
    found = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert found[("mlaccounts_syncs_total", frozenset({("outcome", "success")}))] == 5
    endpoint = frozenset({("method", "GET"), ("endpoint", "/orders/search"), ("status", "200")})
    assert found[("mlaccounts_ml_requests_total", endpoint)] == 2
    # One file per process and kind, named after the host and the pid.
    files = sorted(path.name for path in (tmp_path / "metrics").glob("counter_*.db"))
    assert len(files) == 3 and all(any(name.endswith(f"-{pid}.db") for name in files) for pid in pids)


def test_an_empty_directory_variable_means_one_process(monkeypatch):
    monkeypatch.setenv(prometheus.VARIABLE, "")

    assert prometheus.configure("") == ""
    assert prometheus.VARIABLE not in os.environ
    assert values.ValueClass is values.MutexValue


def test_gunicorns_child_exit_drops_a_dead_workers_live_gauges_and_keeps_its_counters(monkeypatch, tmp_path):
    monkeypatch.setenv(prometheus.VARIABLE, str(tmp_path))
    name = prometheus.process_identifier(4242)
    for kind in ("gauge_livesum", "gauge_all", "counter"):
        (tmp_path / f"{kind}_{name}.db").write_bytes(b"")
    spec = importlib_util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib_util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    conf.child_exit(None, SimpleNamespace(pid=4242))

    assert sorted(path.name for path in tmp_path.iterdir()) == [f"counter_{name}.db", f"gauge_all_{name}.db"]


def test_wipe_empties_the_directory(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_x-1.db").write_bytes(b"1")

    prometheus.wipe(tmp_path / "metrics")

    assert list((tmp_path / "metrics").iterdir()) == []
