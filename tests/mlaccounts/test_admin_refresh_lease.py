"""Saving an account in the admin never drops a token refresh in flight."""

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import MLAccount
from mlaccounts.admin import MLAccountAdmin
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_admin_save_keeps_a_refresh_lease_taken_after_the_page_loaded(client, ml_account, monkeypatch):
    client.force_login(UserFactory(email="admin@example.com", is_staff=True, is_superuser=True))
    claims = []
    real_save_model = MLAccountAdmin.save_model

    def lease_taken_meanwhile(self, request, obj, form, change):
        # The object was loaded for the form; a refresh takes the lease before it is saved.
        claims.append(services.mlaccount_refresh_claim(account_id=obj.pk, lease_seconds=30))
        real_save_model(self, request, obj, form, change)

    monkeypatch.setattr(MLAccountAdmin, "save_model", lease_taken_meanwhile)
    response = client.post(
        reverse("admin:accounts_mlaccount_change", args=[ml_account.pk]),
        {
            "workspace": ml_account.workspace_id,
            "nickname": ml_account.nickname,
            "email": ml_account.email,
            "site_id": "MLB",
            "account_name": "Renamed in admin",
            "account_type": "store",
            "sync_enabled": "on",
            "sync_interval": 600,
            "notifications_enabled": "on",
            "events-TOTAL_FORMS": 0,
            "events-INITIAL_FORMS": 0,
            "events-MIN_NUM_FORMS": 0,
            "events-MAX_NUM_FORMS": 1000,
        },
    )
    assert response.status_code == 302
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.account_name == "Renamed in admin"
    assert account.refresh_claim == claims[0].claim and account.refresh_lease_until is not None
