"""A workspace's history (issue 15): its counts added up per hour, its accounts per colour per day."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts import selectors
from accounts.models import CountSnapshot, MLAccount, ReputationSnapshot
from tests.factories import MLAccountFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def test_the_counts_of_every_account_are_added_up_per_hour(user):
    first = MLAccountFactory(owner=user)
    second = MLAccountFactory(owner=user, workspace=first.workspace)
    outsider = MLAccountFactory(owner=UserFactory())
    hour = NOW.replace(minute=0)
    for account, questions in ((first, 3), (second, 4), (outsider, 100)):
        CountSnapshot.objects.create(
            account=account, hour=hour, products=10, orders=2, questions=questions, claims=1
        )
    CountSnapshot.objects.create(account=first, hour=hour - timedelta(hours=1), products=9, questions=None)
    CountSnapshot.objects.create(account=first, hour=hour - timedelta(days=31), products=1)  # too old

    points = selectors.count_history_totals(
        accounts=MLAccount.objects.filter(workspace=first.workspace), days=30, now=NOW
    )

    assert [(p.hour, p.products, p.orders, p.questions, p.claims) for p in points] == [
        (hour - timedelta(hours=1), 9, 0, 0, 0),
        (hour, 20, 4, 7, 2),
    ]


def test_accounts_are_counted_per_colour_and_day(user, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    accounts = [MLAccountFactory(owner=user) for _ in range(4)]
    levels = {
        date(2026, 11, 19): ["5_green", "4_light_green", "3_yellow", "1_red"],
        date(2026, 11, 20): ["5_green", "5_green", "2_orange", ""],  # a new seller: no colour
    }
    for day, ids in levels.items():
        for account, level in zip(accounts, ids, strict=True):
            ReputationSnapshot.objects.create(account=account, day=day, taken_at=NOW, level_id=level)

    days = selectors.reputation_levels_by_day(
        accounts=MLAccount.objects.filter(pk__in=[a.pk for a in accounts]), days=2, now=NOW
    )

    assert days == [
        (date(2026, 11, 19), {"green": 2, "yellow": 1, "red": 1}),
        (date(2026, 11, 20), {"green": 2, "yellow": 0, "red": 1}),
    ]


def test_the_sales_page_draws_the_workspace_history(client_user, user):
    account = MLAccountFactory(owner=user)
    CountSnapshot.objects.create(
        account=account, hour=timezone.now().replace(minute=0, second=0, microsecond=0), questions=5, claims=2
    )
    body = client_user.get("/sales/").content.decode()
    for chart_id in ("workspace-counts-sales-chart", "workspace-counts-desk-chart", "levels-chart"):
        assert f'id="{chart_id}"' in body
    desk = body[body.index('id="workspace-counts-desk-chart"') :]
    assert "<svg" in desk[: desk.index("</figure>")]
