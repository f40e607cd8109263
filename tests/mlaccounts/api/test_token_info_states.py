"""tokenInfo of an account whose grant ML refused: never healthy (issue 9, finding 4)."""

import pytest

from accounts import services

pytestmark = pytest.mark.django_db


def test_token_info_of_a_dead_grant_reports_zero_health(alice, ml_account):
    services.mlaccount_mark_expired(account_id=ml_account.pk, message="invalid_grant")
    response = alice.get(f"/api/ml-accounts/{ml_account.pk}/token-info")
    assert response.status_code == 200
    info = response.json()["data"]["tokenInfo"]
    assert (info["healthPercent"], info["needsRefresh"], info["isExpired"]) == (0, True, True)
