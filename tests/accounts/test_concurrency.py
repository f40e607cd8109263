"""Races that only a real database with row locks can show (PostgreSQL in CI)."""

import pytest
from django.db import connection

from accounts import services
from accounts.models import MLAccount
from tests.factories import MLAccountFactory
from tests.threads import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_make_primary_leaves_exactly_one_primary(user):
    assert connection.vendor == "postgresql"
    accounts = [MLAccountFactory(owner=user, is_primary=(i == 0)) for i in range(4)]
    for _ in range(5):
        _, errors = run_together(
            [lambda a=account: services.mlaccount_make_primary(account=a) for account in accounts[1:]]
        )
        assert errors == []
        assert MLAccount.objects.filter(workspace__personal_for=user, is_primary=True).count() == 1


def test_concurrent_first_connects_make_one_primary(user):
    from datetime import timedelta

    from django.utils import timezone

    def connect(n):
        return lambda: services.mlaccount_connect(
            workspace=services.workspace_personal(user=user),
            connected_by=user,
            ml_user_id=9_000 + n,
            nickname=f"S{n}",
            email="",
            access_token="a",
            refresh_token="r",
            token_expires_at=timezone.now() + timedelta(hours=6),
        )

    _, errors = run_together([connect(n) for n in range(4)])
    assert errors == []
    assert MLAccount.objects.filter(workspace__personal_for=user).count() == 4
    assert MLAccount.objects.filter(workspace__personal_for=user, is_primary=True).count() == 1
