"""The orders and reputation mirrors in the admin (issue 15): shown, never edited."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import sales as ml_sales
from accounts.models import Order, ReputationSnapshot
from tests.mlmock import order_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def mirrored(ml_account):
    services.order_mirror_store(account_id=ml_account.pk, orders=[ml_sales.parse_order(order_json(0))])
    ReputationSnapshot.objects.create(
        account=ml_account,
        day=date(2026, 11, 20),
        taken_at=timezone.now(),
        level_id="5_green",
        claims_rate=Decimal("0.012"),
    )
    return ml_account


@pytest.mark.parametrize("model", ["order", "reputationsnapshot"])
def test_the_admin_lists_the_mirrors_and_shows_no_token(admin_client, mirrored, model):
    response = admin_client.get(reverse(f"admin:accounts_{model}_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert mirrored.account_name in body
    assert mirrored.access_token not in body and mirrored.refresh_token not in body


@pytest.mark.parametrize("model", [Order, ReputationSnapshot])
def test_the_mirrors_cannot_be_added_or_changed_in_the_admin(admin_client, mirrored, model):
    name = model._meta.model_name
    assert admin_client.get(reverse(f"admin:accounts_{name}_add")).status_code == 403
    row = model.objects.get()
    url = reverse(f"admin:accounts_{name}_change", args=[row.pk])
    assert admin_client.get(url).status_code == 200  # shown read-only
    before = list(model.objects.values())
    admin_client.post(url, {"status": "cancelled", "level_id": "1_red"})
    assert list(model.objects.values()) == before


def test_a_signed_in_user_who_is_not_staff_is_sent_to_the_admin_login(client_user, mirrored):
    response = client_user.get(reverse("admin:accounts_order_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
