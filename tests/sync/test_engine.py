import re
from datetime import timedelta

import pytest
import responses
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.mercadolivre.errors import MLUnavailable
from accounts.models import AccountEvent, MLAccount
from sync import engine
from tests.mlmock import API, RotatingTokenEndpoint, add_counts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]


def test_success_saves_counts_and_releases_the_claim(ml_account, ml):
    add_counts(ml, products=120, orders=33, questions=4, claims=2)
    result = engine.sync_account(ml_account.pk)
    assert result.ok
    # Listings, the orders read (its mirror counts them: no count call), questions, claims,
    # and the day's reputation.
    assert result.ml_calls == 5
    ml_account.refresh_from_db()
    assert (ml_account.cached_products, ml_account.cached_orders) == (120, 33)
    assert (ml_account.cached_questions, ml_account.cached_claims) == (4, 2)
    assert ml_account.last_sync_status == "success"
    assert ml_account.sync_started_at is None
    assert ml_account.next_sync > timezone.now() + timedelta(seconds=ml_account.sync_interval - 5)
    # Every call carried the token in the header only.
    for call in ml.calls:
        assert call.request.headers["Authorization"] == f"Bearer {ml_account.access_token}"
        assert ml_account.access_token not in call.request.url


def test_two_runs_in_a_row_leave_the_same_state(ml_account, ml):
    add_counts(ml)
    engine.sync_account(ml_account.pk)
    first = MLAccount.objects.values(
        "cached_products", "cached_orders", "cached_questions", "cached_claims", "status", "error_count"
    ).get(pk=ml_account.pk)
    engine.sync_account(ml_account.pk)
    second = MLAccount.objects.values(*first).get(pk=ml_account.pk)
    assert first == second


def test_claimed_account_is_skipped_without_calling_ml(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=timezone.now())
    result = engine.sync_account(ml_account.pk)
    assert result.outcome == engine.Outcome.SKIPPED
    assert len(ml.calls) == 0


def test_abandoned_claim_is_taken_again(ml_account, ml, settings):
    add_counts(ml)
    stale = timezone.now() - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1)
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=stale, last_sync_status="in_progress")
    assert engine.sync_account(ml_account.pk).ok


def test_missing_account(db, ml):
    assert engine.sync_account("6f1c7c1e-0000-4000-8000-000000000000").outcome == engine.Outcome.MISSING


@pytest.mark.parametrize(
    ("status", "kind"),
    [(503, "unavailable"), (500, "unavailable"), (429, "rate_limited")],
)
def test_transient_failure_is_recorded_without_expiring(ml_account, ml, status, kind):
    add_counts(ml, status=status)
    result = engine.sync_account(ml_account.pk)
    assert result.outcome == engine.Outcome.FAILED
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.ACTIVE
    assert ml_account.error_count == 1
    assert ml_account.last_sync_status == "failed"
    assert ml_account.sync_started_at is None
    assert ml_account.access_token  # tokens untouched
    assert AccountEvent.objects.get(account=ml_account).kind == kind


def test_timeout_counts_as_unavailable(ml_account, ml):
    import requests

    ml.add(responses.GET, re.compile(API + ".*"), body=requests.ConnectTimeout("slow"))
    result = engine.sync_account(ml_account.pk)
    assert isinstance(result.error, MLUnavailable)
    assert AccountEvent.objects.get(account=ml_account).kind == "unavailable"


def test_bad_response_is_recorded(ml_account, ml):
    ml.add(responses.GET, re.compile(API + r"/users/\d+/items/search"), json={"paging": {}})
    result = engine.sync_account(ml_account.pk)
    assert result.outcome == engine.Outcome.FAILED
    assert AccountEvent.objects.get(account=ml_account).kind == "bad_response"


def test_transient_failure_is_raised_for_a_retrying_caller(ml_account, ml):
    add_counts(ml, status=503)
    with pytest.raises(MLUnavailable):
        engine.sync_account(ml_account.pk, final_attempt=False)
    ml_account.refresh_from_db()
    assert ml_account.error_count == 0
    assert ml_account.sync_started_at is None
    assert not AccountEvent.objects.exists()


def test_rejected_token_is_renewed_once_and_the_sync_succeeds(ml_account, ml):
    """The token dies mid-way (revoked before its expiry): one refresh, then success."""
    endpoint = RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token)
    endpoint.install(ml)
    old_token = ml_account.access_token

    def items(request):
        if request.headers["Authorization"] == f"Bearer {old_token}":
            return (401, {}, '{"message":"invalid_token","error":"not_found","status":401,"cause":[]}')
        return (200, {}, '{"paging": {"total": 7}}')

    ml.add_callback(responses.GET, re.compile(API + r"/users/\d+/items/search"), callback=items)
    add_counts(ml, products=None)
    result = engine.sync_account(ml_account.pk)
    assert result.ok
    assert endpoint.calls == 1
    ml_account.refresh_from_db()
    assert ml_account.cached_products == 7
    assert ml_account.access_token != old_token


def test_dead_grant_marks_the_account_expired(ml_account, ml):
    ml.add(
        responses.GET,
        re.compile(API + r"/users/\d+/items/search"),
        status=401,
        json={"message": "invalid_token", "error": "not_found", "status": 401, "cause": []},
    )
    ml.add(
        responses.POST,
        API + "/oauth/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "revoked", "status": 400, "cause": []},
    )
    result = engine.sync_account(ml_account.pk)
    assert result.outcome == engine.Outcome.FAILED
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.EXPIRED
    assert ml_account.sync_started_at is None
    events = list(AccountEvent.objects.filter(account=ml_account))
    assert [e.kind for e in events] == ["auth"]  # one event, not two


def test_expired_token_is_refreshed_before_fetching(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))
    endpoint = RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token)
    endpoint.install(ml)
    add_counts(ml)
    assert engine.sync_account(ml_account.pk).ok
    assert endpoint.calls == 1
    assert ml.calls[0].request.url == API + "/oauth/token"


def test_five_failures_in_a_row_put_the_account_in_error_then_a_success_recovers(ml_account, ml):
    add_counts(ml, status=503)
    for _ in range(5):
        MLAccount.objects.filter(pk=ml_account.pk).update(next_sync=timezone.now())
        engine.sync_account(ml_account.pk)
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.ERROR
    ml.reset()
    add_counts(ml)
    assert engine.sync_account(ml_account.pk).ok
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.ACTIVE
    assert ml_account.error_count == 0


def test_sync_account_command_prints_the_counts(ml_account, ml, capsys):
    add_counts(ml, products=9, orders=8, questions=7, claims=6)
    call_command("sync_account", str(ml_account.pk))
    out = capsys.readouterr().out
    assert "9 active listings" in out and "6 open claims" in out
    assert ml_account.access_token not in out


def test_sync_account_command_fails_clearly(db, ml):
    with pytest.raises(CommandError, match="No Mercado Livre account"):
        call_command("sync_account", "6f1c7c1e-0000-4000-8000-000000000000")
