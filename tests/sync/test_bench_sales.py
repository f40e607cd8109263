"""The bench's sales phase (sync/management/commands/_bench_sales.py) at a tiny size: the seeding
and the page measure it runs, and the constant query count it proves (no timings)."""

from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from accounts.models import MLAccount, Order, ReputationSnapshot
from sync.management.commands import _bench_sales as bench_sales

pytestmark = pytest.mark.django_db


def test_seed_makes_a_workspace_of_accounts_and_orders_in_their_sites_currencies():
    seeded = bench_sales.seed(accounts=5, orders=400)

    accounts = MLAccount.objects.filter(workspace=seeded.workspace)
    assert accounts.count() == 5
    assert seeded.user.current_workspace_id == seeded.workspace.pk
    orders = Order.objects.filter(account__workspace=seeded.workspace)
    assert orders.count() == 400
    # Of every 20 accounts the first 16 are in Brazil (80 of 100): five are all MLB.
    by_site = dict(accounts.values_list("site_id").annotate(n=Count("pk")))
    assert by_site == {"MLB": 5}
    assert set(orders.values_list("currency", flat=True)) == {"BRL"}
    statuses = dict(orders.values_list("status").annotate(n=Count("pk")))
    assert statuses["paid"] == 280 and statuses["cancelled"] == 60
    assert orders.aggregate(fees=Sum("sale_fees"))["fees"] < orders.aggregate(t=Sum("total_amount"))["t"]
    assert ReputationSnapshot.objects.filter(account__workspace=seeded.workspace).count() == 5


def test_argentinian_accounts_sell_in_pesos():
    seeded = bench_sales.seed(accounts=20, orders=200)

    pesos = Order.objects.filter(account__workspace=seeded.workspace, account__site_id="MLA")
    assert MLAccount.objects.filter(workspace=seeded.workspace, site_id="MLA").count() == 4
    assert pesos.exists()
    assert set(pesos.values_list("currency", flat=True)) == {"ARS"}
    assert min(pesos.values_list("total_amount", flat=True)) >= Decimal("19.90") * 250


def test_the_sales_page_makes_as_many_queries_for_ten_times_the_accounts_and_orders():
    small = bench_sales.seed(accounts=3, orders=300)
    large = bench_sales.seed(accounts=30, orders=3000, seed_value=16)

    for days in bench_sales.WINDOWS:
        few = bench_sales.measure_page(small.user, days=days, requests=1)
        many = bench_sales.measure_page(large.user, days=days, requests=1)

        assert (few.status, many.status) == (200, 200)
        assert few.queries == many.queries, (few.sql, many.sql)
        assert len(few.times_ms) == len(many.times_ms) == 1
        # The large workspace's page lists a page of accounts, the small one all three.
        assert few.size < many.size
