"""The "Vendas" page, the account page's sales, reputation and history, the reputation margin (issue 15).

The cast: `user` (Alice) has two stores in her personal workspace, "Loja BR" (MLB, selling
in BRL) and "Tienda AR" (MLA, in ARS), with orders of every status spread over the last 60
days, and "Loja BR" near the claims limit. Her agency "Agência Sol" has its own stores and
members of every role. `other_user` (Charlie) is the outsider. Orders are stored through
the mirror's service (`services.order_mirror_store`) as a sync would; times are relative to
`timezone.now()` with margins of hours, so no figure depends on the time of day.
"""

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import sales as ml_sales
from accounts.models import CountSnapshot, ReputationSnapshot, User, Workspace
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlmock import order_json

pytestmark = pytest.mark.django_db

SALES = reverse("dashboard:sales")
LOGIN = reverse("account_login")

# The "Vendas" page, whatever the number of accounts and orders (found with
# CaptureQueriesContext):
#  1. the session,
#  2. the user,
#  3. the user's workspaces with their role (the header's switcher and the current one),
#  4. the totals per currency, this window and the previous one (sales_summary),
#  5. the revenue and orders per day and currency (sales_daily),
#  6. the number of accounts (the paginator's count),
#  7. the page of accounts with their workspace,
#  8. the page's figures per account and currency (sales_by_account),
#  9. the page's newest reputation snapshots (reputation_latest),
# 10. the newest reputation snapshots of every account of the workspace (the warnings),
# 11. the accounts of those snapshots with their workspace (each one's margin),
# 12. the accounts still importing their orders (the "figures are partial" note),
# 13. the workspace's counts added up per hour (count_history_totals),
# 14. its accounts per reputation level and day (reputation_levels_by_day).
SALES_PAGE_QUERIES = 14
# The account page, whatever the number of orders and snapshots:
#  1. the session, 2. the user, 3. the account (with its workspace and the caller's role),
#  4. its notification summary, 5. its totals per currency (sales_summary), 6. its revenue and
#  orders per day (sales_daily), 7. its newest reputation snapshot, 8. its reputation
#  snapshots of the last 30 days (the rates chart), 9. its count snapshots of the last 30 days
#  (the history charts), 10. the user's workspaces (the header's switcher), 11. its events,
#  12. its newest audit entries (the "Activity" of an owner or a manager, issue 16).
ACCOUNT_PAGE_QUERIES = 12

_order_ids = itertools.count(9_300_000)
ROW = re.compile(r'<tr id="sales-([0-9a-f-]{36})">')


# --- helpers -------------------------------------------------------------------------------------


def ml_order(*, amount, currency="BRL", status="paid", ago=timedelta(hours=5), fee="0.00"):
    """An order as the mirror gets it from ML (§4.2), created `ago` before now."""
    created = timezone.now() - ago
    body = order_json(0, status=status) | {
        "id": next(_order_ids),
        "total_amount": amount,
        "currency_id": currency,
        "date_created": created.isoformat(),
        "date_last_updated": (created + timedelta(minutes=5)).isoformat(),
        "order_items": [{"quantity": 1, "unit_price": amount, "sale_fee": fee}],
    }
    order = ml_sales.parse_order(body)
    assert order is not None
    return order


def sell(account, **order):
    services.order_mirror_store(account_id=account.pk, orders=[ml_order(**order)])


def reputation(account, *, claims="0.01", delayed="0.05", cancellations="0.001", day=None, **fields):
    values = {
        "level_id": "5_green",
        "period": "60 days",
        "claims_value": 3,
        "delayed_handling_value": 9,
        "cancellations_value": 1,
    } | fields
    return ReputationSnapshot.objects.create(
        account=account,
        day=day or timezone.localdate(),
        taken_at=timezone.now(),
        claims_rate=Decimal(claims),
        delayed_handling_rate=Decimal(delayed),
        cancellations_rate=Decimal(cancellations),
        **values,
    )


def english(client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def signed_in(user, *, workspace=None, language="en") -> Client:
    """A client of `user`, showing `workspace` (their personal one otherwise)."""
    if workspace is not None:
        services.workspace_switch(user=user, workspace=workspace)
    client = Client()
    if language == "en":
        english(client)
    client.force_login(user)
    return client


def page(client, path, status=200, **query) -> str:
    response = client.get(path, query)
    assert response.status_code == status, response.content.decode()[:800]
    return response.content.decode()


def account_url(account) -> str:
    return reverse("dashboard:account", args=[account.pk])


def settings_url(workspace) -> str:
    return reverse("dashboard:desk_settings", args=[workspace.pk])


def text_of(body: str, element_id: str) -> str:
    """The text right inside the element with this id."""
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', body)
    assert found, f"no #{element_id}"
    return found.group(1)


def section(body: str, section_id: str) -> str:
    """The <section id=…> of the page (none of these nests another section)."""
    found = re.search(rf'<section [^>]*id="{section_id}">(.*?)</section>', body, re.S)
    assert found, f"no section #{section_id}"
    return found.group(1)


def figure(body: str, chart_id: str) -> str:
    found = re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', body, re.S)
    assert found, f"no chart #{chart_id}"
    return found.group(1)


def table_rows(chart: str) -> int:
    return len(re.findall(r'<tr><th scope="row">', chart))


def rows(body: str) -> list[str]:
    return ROW.findall(body)


def row(body: str, account) -> str:
    found = re.search(rf'<tr id="sales-{account.pk}">(.*?)</tr>', body, re.S)
    assert found, f"no row for {account.account_name}"
    return found.group(1)


def current_window(body: str) -> list[str]:
    return re.findall(r'id="window-(\d+)" aria-current="true"', body)


# --- the cast ------------------------------------------------------------------------------------


@pytest.fixture
def stores(user):
    """Alice's two stores. In the last 30 days "Loja BR" sold 1,234.50 (5 h ago, fee 148.14),
    15.50 (3 days ago) and 250.00 (10 days ago), had one cancelled order and five of other
    statuses; in the 30 days before, 700.00 and 500.00 and one cancelled. "Tienda AR" sold
    45,000.00 ARS. "Loja BR" is at 2.6 % claims (near the 3 % limit), "Tienda AR" at 1 %."""
    brazil = MLAccountFactory(owner=user, site_id="MLB", account_name="Loja BR", is_primary=True)
    argentina = MLAccountFactory(
        owner=user, workspace=brazil.workspace, site_id="MLA", account_name="Tienda AR"
    )
    orders = [
        ml_order(amount="1234.50", fee="148.14", ago=timedelta(hours=5)),
        ml_order(amount="15.50", ago=timedelta(days=3)),
        ml_order(amount="250.00", ago=timedelta(days=10)),
        ml_order(amount="999.00", status="cancelled", ago=timedelta(hours=2)),
        ml_order(amount="777.00", status="payment_required", ago=timedelta(days=1)),
        ml_order(amount="333.00", status="partially_refunded", ago=timedelta(days=1)),
        ml_order(amount="222.00", status="pending_cancel", ago=timedelta(days=1)),
        ml_order(amount="111.00", status="invalid", ago=timedelta(days=1)),
        ml_order(amount="444.00", status="confirmed", ago=timedelta(days=1)),
        ml_order(amount="700.00", ago=timedelta(days=35)),
        ml_order(amount="500.00", ago=timedelta(days=40)),
        ml_order(amount="88.00", status="cancelled", ago=timedelta(days=45)),
        ml_order(amount="9999.00", ago=timedelta(days=70)),  # before both windows
    ]
    services.order_mirror_store(account_id=brazil.pk, orders=orders)
    sell(argentina, amount="45000.00", currency="ARS", ago=timedelta(hours=5))
    reputation(brazil, claims="0.026", power_seller_status="platinum", claims_value=12)
    reputation(argentina, claims="0.01")
    return brazil, argentina


@pytest.fixture
def alice(client_user):
    return english(client_user)


@pytest.fixture
def charlie(other_user):
    return signed_in(other_user)


@pytest.fixture
def agency(user):
    """Alice's agency: "Loja Sol" (MLB, BRL 1,000.00, claims 2.6 %) and "Loja Lua" (MLA, ARS
    7,000.00, claims 2.8 %); Victor views, Bob operates, Maria manages, Sam views "Loja Sol"
    only. Everyone but Alice is shown the agency."""
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, user, "owner")
    sol = MLAccountFactory(workspace=workspace, account_name="Loja Sol", site_id="MLB")
    lua = MLAccountFactory(workspace=workspace, account_name="Loja Lua", site_id="MLA")
    sell(sol, amount="1000.00")
    sell(lua, amount="7000.00", currency="ARS")
    reputation(sol, claims="0.026")
    reputation(lua, claims="0.028")
    team = {"workspace": workspace, "sol": sol, "lua": lua}
    for name, role, scope in [
        ("victor", "viewer", None),
        ("bob", "operator", None),
        ("maria", "manager", None),
        ("sam", "viewer", [sol]),
    ]:
        person = UserFactory(email=f"{name}@example.com")
        member(workspace, person, role, accounts=scope)
        team[name] = signed_in(person, workspace=workspace)
    return team


# --- the "Vendas" page: who sees it ---------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, stores):
    brazil, _ = stores
    for path in (SALES, f"{SALES}?days=7", account_url(brazil), settings_url(brazil.workspace)):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(LOGIN + "?next="), path


def test_the_outsider_sees_none_of_the_owners_accounts_or_money(charlie, other_user, stores):
    brazil, argentina = stores
    for remembered in (None, brazil.workspace):
        if remembered is not None:
            # Even remembering Alice's workspace (it cannot happen through the switcher).
            User.objects.filter(pk=other_user.pk).update(current_workspace=remembered)
        body = page(charlie, SALES)
        assert 'id="sales-empty"' in body and 'id="sales-no-accounts"' in body
        assert rows(body) == []
        assert 'id="reputation-warnings"' not in body
        for secret in (str(brazil.pk), str(argentina.pk), "Loja BR", "Tienda AR", "1,500.00", "45,000.00"):
            assert secret not in body
        assert 'id="sales-brl"' not in body and 'id="sales-ars"' not in body


# --- the "Vendas" page: figures ------------------------------------------------------------------


def test_totals_are_per_currency_and_never_added_together(alice, stores):
    body = page(alice, SALES)

    brl, ars = section(body, "sales-brl"), section(body, "sales-ars")
    assert text_of(brl, "totals-brl-revenue") == "R$\xa01,500.00"
    assert text_of(brl, "totals-brl-orders") == "3"
    assert text_of(brl, "totals-brl-ticket") == "R$\xa0500.00"
    assert text_of(brl, "totals-brl-fees") == "R$\xa0148.14"
    assert "net: R$\xa01,351.86" in brl
    assert "45,000.00" not in brl
    assert text_of(ars, "totals-ars-revenue") == "$\xa045,000.00"
    assert text_of(ars, "totals-ars-orders") == "1"
    assert "R$" not in ars and "1,500.00" not in ars
    # No mixed total anywhere: 1,500.00 + 45,000.00.
    assert "46,500.00" not in body
    # The busiest currency (more paid orders) first.
    assert body.index('id="sales-brl"') < body.index('id="sales-ars"')


def test_money_is_shown_the_brazilian_way_by_default(client_user, stores):
    body = page(client_user, SALES, days="1")

    assert text_of(body, "totals-brl-revenue") == "R$\xa01.234,50"
    assert text_of(body, "totals-ars-revenue") == "$\xa045.000,00"
    assert text_of(page(client_user, SALES), "totals-brl-fees") == "R$\xa0148,14"
    assert "R$\xa01,234.50" not in body


def test_money_is_shown_the_english_way_in_english(alice, stores):
    body = page(alice, SALES, days="1")

    assert text_of(body, "totals-brl-revenue") == "R$\xa01,234.50"
    assert text_of(body, "totals-ars-revenue") == "$\xa045,000.00"
    assert "R$\xa01.234,50" not in body


def test_revenue_counts_paid_orders_only_and_cancelled_counts_cancelled_ones(alice, stores):
    body = page(alice, SALES)

    # 1,234.50 + 15.50 + 250.00 paid; not the cancelled 999.00 nor the 777.00, 333.00,
    # 222.00, 111.00 and 444.00 of other statuses (pending_cancel is not cancelled yet).
    assert text_of(body, "totals-brl-revenue") == "R$\xa01,500.00"
    assert text_of(body, "totals-brl-orders") == "3"
    assert text_of(body, "totals-brl-cancelled") == "1"
    brazil_row = row(body, stores[0])
    assert '<td data-label="Revenue"><span class="money-line">R$\xa01,500.00' in brazil_row
    assert '<td data-label="Cancelled"><span class="money-line">1</span>' in brazil_row
    for excluded in ("2,499.00", "999.00", "777.00", "444.00"):
        assert excluded not in section(body, "sales-brl")


def test_the_previous_window_is_shown_beside_the_current_one(alice, stores):
    brl = section(page(alice, SALES), "sales-brl")

    # 700.00 + 500.00 paid and one cancelled 30 to 60 days ago; 9,999.00 is older.
    assert "before: R$\xa01,200.00" in brl
    assert '<span class="change change-up" title="Against the period before">+25.0%</span>' in brl
    assert "before: 2" in brl  # paid orders
    assert "before: R$\xa0600.00" in brl  # average ticket
    assert "9,999.00" not in brl
    # ARS sold nothing before: no change shown, the previous figures are zero.
    ars = section(page(alice, SALES), "sales-ars")
    assert 'class="change ' not in ars and "before: $\xa00.00" in ars


def test_a_drop_on_the_previous_window_is_shown_as_one(alice, user):
    account = MLAccountFactory(owner=user, account_name="Loja Fraca")
    sell(account, amount="300.00", ago=timedelta(days=2))
    sell(account, amount="1200.00", ago=timedelta(days=40))

    brl = section(page(alice, SALES), "sales-brl")

    assert '<span class="change change-down" title="Against the period before">\u221275.0%</span>' in brl


def test_the_window_switch_changes_the_figures(alice, stores):
    week = page(alice, SALES, days="7")
    day = page(alice, SALES, days="1")
    quarter = page(alice, SALES, days="90")

    assert current_window(week) == ["7"]
    assert text_of(week, "totals-brl-revenue") == "R$\xa01,250.00"  # without the 250.00 of 10 days ago
    assert "before: R$\xa0250.00" in week and "+400.0%" in week
    assert table_rows(figure(week, "revenue-brl-chart")) == 7
    assert "total R$\xa01,250.00" in figure(week, "revenue-brl-chart")
    assert current_window(day) == ["1"]
    assert text_of(day, "totals-brl-revenue") == "R$\xa01,234.50"
    assert text_of(day, "totals-brl-cancelled") == "1"
    assert current_window(quarter) == ["90"]
    assert text_of(quarter, "totals-brl-revenue") == "R$\xa012,699.00"  # with 700, 500 and 9,999
    assert table_rows(figure(quarter, "revenue-brl-chart")) == 90
    assert '<a href="?days=7" id="window-7"' in week


@pytest.mark.parametrize("days", ["abc", "0", "2", "-7", "7.0", "365", "", "1e1"])
def test_an_invalid_window_falls_back_to_30_days(alice, stores, days):
    body = page(alice, SALES, days=days)

    assert current_window(body) == ["30"]
    assert text_of(body, "totals-brl-revenue") == "R$\xa01,500.00"
    assert table_rows(figure(body, "revenue-brl-chart")) == 30


def test_the_daily_charts_are_svg_with_their_data_and_no_inline_style(alice, stores):
    body = page(alice, SALES)

    for chart_id in ("revenue-brl-chart", "orders-brl-chart", "revenue-ars-chart", "orders-ars-chart"):
        chart = figure(body, chart_id)
        assert '<svg class="chart-svg"' in chart and 'role="img"' in chart
        assert '<details class="chart-data">' in chart
        assert table_rows(chart) == 30
    assert "total R$\xa01,500.00" in figure(body, "revenue-brl-chart")
    assert "total 3," in figure(body, "orders-brl-chart")
    assert "total $\xa045,000.00" in figure(body, "revenue-ars-chart")
    main = body[body.index('<main id="main"') : body.index("</main>")]
    assert "style=" not in main


# --- the "Vendas" page: accounts -----------------------------------------------------------------


def test_each_account_has_a_row_with_its_own_currency(alice, stores):
    brazil, argentina = stores
    body = page(alice, SALES)

    assert rows(body) == [str(brazil.pk), str(argentina.pk)]  # by name
    brazil_row, argentina_row = row(body, brazil), row(body, argentina)
    assert f'href="{account_url(brazil)}#sales">Loja BR</a>' in brazil_row
    assert "R$\xa01,500.00" in brazil_row and "$\xa045,000.00" not in brazil_row
    assert '<td data-label="Average ticket"><span class="money-line">R$\xa0500.00' in brazil_row
    assert "$\xa045,000.00" in argentina_row and "R$" not in argentina_row
    assert '<span class="badge badge-warn">' in brazil_row
    assert '<span class="badge badge-warn">' not in argentina_row


def test_an_account_without_orders_in_the_window_says_so(alice, user, stores):
    brazil, _ = stores
    quiet = MLAccountFactory(owner=user, workspace=brazil.workspace, account_name="Zeta")

    body = page(alice, SALES)

    assert 'colspan="5" class="muted"' in row(body, quiet)
    assert 'colspan="5"' not in row(body, brazil)


def test_the_accounts_are_paginated_25_a_page(alice, user):
    first = MLAccountFactory(owner=user, account_name="Loja 00")
    accounts = [first] + [
        MLAccountFactory(owner=user, workspace=first.workspace, account_name=f"Loja {n:02d}")
        for n in range(1, 27)
    ]
    sell(accounts[-1], amount="321.00")

    one = page(alice, SALES, days="7")
    two = page(alice, SALES, days="7", page="2")

    assert rows(one) == [str(a.pk) for a in accounts[:25]]
    assert rows(two) == [str(a.pk) for a in accounts[25:]]
    assert "27 accounts in" in one
    assert 'href="?days=7&amp;page=2" rel="next" id="sales-next"' in one and 'id="sales-prev"' not in one
    assert 'href="?days=7&amp;page=1" rel="prev" id="sales-prev"' in two and 'id="sales-next"' not in two
    # The totals are the workspace's on every page.
    assert text_of(one, "totals-brl-revenue") == text_of(two, "totals-brl-revenue") == "R$\xa0321.00"
    assert "R$\xa0321.00" in row(two, accounts[-1])
    # A page past the end shows the last one.
    assert rows(page(alice, SALES, page="9")) == [str(a.pk) for a in accounts[25:]]


def _workspace_with_sales(owner, count: int):
    """`count` accounts in `owner`'s personal workspace, each with orders in BRL and ARS, a
    reputation snapshot (every third near the claims limit) and older snapshots."""
    first = MLAccountFactory(owner=owner, account_name="Conta 000")
    accounts = [first] + [
        MLAccountFactory(owner=owner, workspace=first.workspace, account_name=f"Conta {n:03d}")
        for n in range(1, count)
    ]
    for n, account in enumerate(accounts):
        services.order_mirror_store(
            account_id=account.pk,
            orders=[
                ml_order(amount="100.00", ago=timedelta(hours=3)),
                ml_order(amount="50.00", ago=timedelta(days=33)),
                ml_order(amount="20.00", status="cancelled"),
                ml_order(amount="900.00", currency="ARS", ago=timedelta(days=2)),
            ],
        )
        reputation(account, claims="0.027" if n % 3 == 0 else "0.01")
        reputation(account, claims="0.001", day=timezone.localdate() - timedelta(days=1))
    return accounts


def test_the_page_costs_the_same_for_2_and_60_accounts(django_assert_num_queries):
    few, many = UserFactory(), UserFactory()
    _workspace_with_sales(few, 2)
    _workspace_with_sales(many, 60)
    for person, count, shown, warned in ((few, 2, 2, 1), (many, 60, 25, 20)):
        client = signed_in(person)
        client.get(SALES)  # the first visit remembers the current workspace
        with django_assert_num_queries(SALES_PAGE_QUERIES):
            body = page(client, SALES)
        assert len(rows(body)) == shown
        assert text_of(body, "totals-brl-revenue") == f"R$\xa0{count * 100:,}.00"
        assert text_of(body, "totals-brl-orders") == str(count)
        assert text_of(body, "totals-ars-orders") == str(count)
        assert section(body, "reputation-warnings").count("<li>") == warned
        if count > 25:
            with django_assert_num_queries(SALES_PAGE_QUERIES):
                assert len(rows(page(client, SALES, page="3", days="90"))) == 10


# --- the "Vendas" page: members ------------------------------------------------------------------


def test_a_viewer_sees_the_workspaces_sales(agency):
    body = page(agency["victor"], SALES)

    assert rows(body) == [str(agency["lua"].pk), str(agency["sol"].pk)]
    assert text_of(body, "totals-brl-revenue") == "R$\xa01,000.00"
    assert text_of(body, "totals-ars-revenue") == "$\xa07,000.00"
    assert "2 accounts in Agência Sol" in body


def test_a_scoped_member_sees_only_the_accounts_in_scope_and_their_money(agency):
    body = page(agency["sam"], SALES)

    assert rows(body) == [str(agency["sol"].pk)]
    assert text_of(body, "totals-brl-revenue") == "R$\xa01,000.00"
    assert 'id="sales-ars"' not in body and "7,000.00" not in body
    assert str(agency["lua"].pk) not in body and "Loja Lua" not in body
    warnings = section(body, "reputation-warnings")
    assert f'href="{account_url(agency["sol"])}#reputation"' in warnings


def test_the_pages_show_the_current_workspace_only(alice, user, stores, agency):
    brazil, _ = stores
    personal = page(alice, SALES)
    services.workspace_switch(user=user, workspace=agency["workspace"])
    shared = page(alice, SALES)

    assert str(agency["sol"].pk) not in personal and "7,000.00" not in personal
    assert rows(shared) == [str(agency["lua"].pk), str(agency["sol"].pk)]
    assert str(brazil.pk) not in shared and "45,000.00" not in shared


# --- the "Vendas" page: reputation warnings ------------------------------------------------------


def test_the_warnings_list_the_accounts_near_a_limit_only(alice, stores):
    brazil, argentina = stores
    warnings = section(page(alice, SALES), "reputation-warnings")

    # 2.6 % is past 80 % of the 3 % limit (the default 20 % margin); 1 % is not.
    assert f'<a href="{account_url(brazil)}#reputation">Loja BR</a>' in warnings
    assert "Claims 2.60% (limit 3.00%)" in warnings
    assert str(argentina.pk) not in warnings and "Tienda AR" not in warnings


def test_the_warnings_read_the_newest_snapshot_and_every_page(alice, user):
    first = MLAccountFactory(owner=user, account_name="Aaa 00")
    accounts = [first] + [
        MLAccountFactory(owner=user, workspace=first.workspace, account_name=f"Aaa {n:02d}")
        for n in range(1, 27)
    ]
    late, recovered = accounts[-1], accounts[0]
    reputation(late, delayed="0.14")  # on the second page; late shipments near 15 %
    reputation(recovered, claims="0.029", day=timezone.localdate() - timedelta(days=3))
    reputation(recovered, claims="0.005")

    warnings = section(page(alice, SALES), "reputation-warnings")

    assert f'href="{account_url(late)}#reputation"' in warnings
    assert "Late shipments 14.00% (limit 15.00%)" in warnings
    assert str(recovered.pk) not in warnings


def test_no_warnings_section_without_an_account_near_a_limit(alice, user):
    account = MLAccountFactory(owner=user)
    reputation(account, claims="0.02")  # 20 % below the limit exactly is at 2.4 %

    assert 'id="reputation-warnings"' not in page(alice, SALES)


def test_the_warnings_list_shows_twenty_accounts_those_over_a_limit_first(alice, user):
    workspace = MLAccountFactory(owner=user).workspace
    for n in range(22):
        account = MLAccountFactory(owner=user, workspace=workspace, account_name=f"Loja {n:02d}")
        # Loja 21 is over the 3 % limit; the others near it.
        ReputationSnapshot.objects.create(
            account=account,
            day=timezone.localdate(),
            taken_at=timezone.now(),
            level_id="5_green",
            claims_rate=Decimal("0.031") if n == 21 else Decimal("0.026"),
        )
    english(alice)

    body = alice.get(SALES).content.decode()
    listed = re.findall(r'<li><a href="[^"]+#reputation">([^<]+)</a>', body)
    assert listed == ["Loja 21", *(f"Loja {n:02d}" for n in range(19))]
    assert 'id="warned-more"' in body and "And 2 more accounts" in body
    assert body.count('class="badge badge-danger">over a limit') == 1


def test_accounts_still_importing_their_orders_are_said_to_be_partial(alice, user):
    done = MLAccountFactory(owner=user, cached_at=timezone.now(), orders_synced_at=timezone.now())
    importing = MLAccountFactory(owner=user, workspace=done.workspace, cached_at=timezone.now())
    MLAccountFactory(owner=user, workspace=done.workspace)  # never synced: not importing yet
    english(alice)

    body = alice.get(SALES).content.decode()
    assert 'id="sales-importing"' in body and "1 account is still importing" in body

    account_page = alice.get(reverse("dashboard:account", args=[importing.pk])).content.decode()
    assert 'id="sales-importing"' in account_page
    done_page = alice.get(reverse("dashboard:account", args=[done.pk])).content.decode()
    assert 'id="sales-importing"' not in done_page


def test_an_empty_workspace_shows_the_empty_state(alice, user):
    body = page(alice, SALES)

    assert 'id="sales-empty"' in body and 'id="sales-no-accounts"' in body
    assert "0 accounts in" in body
    assert "chart-svg" not in body and 'id="sales-table"' not in body
    assert 'id="reputation-warnings"' not in body


def test_accounts_without_sales_show_the_empty_state_and_their_rows(alice, user):
    account = MLAccountFactory(owner=user, account_name="Nova")
    sell(account, amount="80.00", ago=timedelta(days=75))  # outside the 30 days and the 30 before

    body = page(alice, SALES)

    assert 'id="sales-empty"' in body and "chart-svg" not in body
    assert rows(body) == [str(account.pk)]
    assert 'colspan="5" class="muted"' in row(body, account)


# --- the account page ----------------------------------------------------------------------------


def test_the_sales_section_shows_the_accounts_figures_in_its_currency(alice, stores):
    brazil, argentina = stores
    mine = section(page(alice, account_url(brazil)), "sales")
    theirs = section(page(alice, account_url(argentina)), "sales")

    assert text_of(mine, "account-sales-revenue") == "R$\xa01,500.00"
    assert text_of(mine, "account-sales-orders") == "3"
    assert text_of(mine, "account-sales-fees") == "R$\xa0148.14"
    assert text_of(mine, "account-sales-cancelled") == "1"
    assert "before: R$\xa01,200.00" in mine and "+25.0%" in mine
    assert '<span class="currency-code">BRL</span>' in mine
    assert "45,000.00" not in mine
    assert text_of(theirs, "account-sales-revenue") == "$\xa045,000.00"
    assert '<span class="currency-code">ARS</span>' in theirs
    assert "R$" not in theirs


def test_the_sales_section_is_in_brazilian_format_by_default(client_user, stores):
    brazil, _ = stores
    mine = section(page(client_user, account_url(brazil), days="1"), "sales")

    assert text_of(mine, "account-sales-revenue") == "R$\xa01.234,50"


def test_an_account_without_orders_shows_zero_in_its_sites_currency(alice, user):
    account = MLAccountFactory(owner=user, site_id="MLA")
    sales = section(page(alice, account_url(account)), "sales")

    assert '<span class="currency-code">ARS</span>' in sales
    assert text_of(sales, "account-sales-revenue") == "$\xa00.00"
    assert text_of(sales, "account-sales-orders") == "0"
    assert text_of(sales, "account-sales-ticket") == "—"
    assert 'class="change ' not in sales


def test_the_account_pages_window_switch(alice, stores):
    brazil, _ = stores
    week = page(alice, account_url(brazil), days="7")
    wrong = page(alice, account_url(brazil), days="8")

    assert current_window(week) == ["7"]
    assert text_of(week, "account-sales-revenue") == "R$\xa01,250.00"
    assert table_rows(figure(week, "revenue-chart")) == 7
    assert '<a href="?days=90#sales" id="window-90">' in week
    assert current_window(wrong) == ["30"]
    assert text_of(wrong, "account-sales-revenue") == "R$\xa01,500.00"
    assert table_rows(figure(wrong, "revenue-chart")) == 30


def test_the_reputation_panel_shows_level_leader_and_rates_against_their_limits(alice, user):
    account = MLAccountFactory(owner=user)
    reputation(
        account,
        claims="0.026",
        delayed="0.05",
        cancellations="0.035",
        power_seller_status="platinum",
        claims_value=12,
    )

    panel = section(page(alice, account_url(account)), "reputation")

    assert '<p class="reputation-level" id="reputation-level"><strong>Green</strong>' in panel
    assert '<span class="badge badge-leader">MercadoLíder Platinum</span>' in panel
    assert '<span class="thermo-step thermo-green is-current">' in panel
    assert panel.count("is-current") == 1
    assert "over 60 days" in panel
    assert 'id="reputation-protected"' not in panel
    claims = re.search(r'<tr id="rate-claims" class="is-near">(.*?)</tr>', panel, re.S).group(1)
    assert "(12)" in claims and "2.60%" in claims and "<td>3.00%</td>" in claims
    assert '<span class="badge badge-warn">near the limit</span>' in claims
    late = re.search(r'<tr id="rate-delayed_handling">(.*?)</tr>', panel, re.S).group(1)
    assert "5.00%" in late and "<td>15.00%</td>" in late and "badge" not in late
    cancellations = re.search(r'<tr id="rate-cancellations" class="is-over">(.*?)</tr>', panel, re.S).group(1)
    assert "3.50%" in cancellations
    assert '<span class="badge badge-danger">over the limit</span>' in cancellations


def test_the_reputation_panel_in_portuguese_shows_rates_the_brazilian_way(client_user, user):
    account = MLAccountFactory(owner=user)
    reputation(account, claims="0.026")

    panel = section(page(client_user, account_url(account)), "reputation")

    assert re.search(r'<tr id="rate-claims" class="is-near">.*?2,60%.*?<td>3,00%</td>', panel, re.S)


def test_a_level_without_limits_warns_of_nothing(alice, user):
    account = MLAccountFactory(owner=user)
    reputation(account, level_id="1_red", claims="0.09", delayed="0.40", cancellations="0.09")

    panel = section(page(alice, account_url(account)), "reputation")

    assert "<strong>Red</strong>" in panel and "thermo-red is-current" in panel
    assert "is-near" not in panel and "is-over" not in panel
    assert re.search(r'<tr id="rate-claims">.*?<td>—</td>', panel, re.S)


PROTECTED_UNTIL = datetime(2027, 3, 15, 15, 0, tzinfo=UTC)


def test_the_reputation_panel_shows_a_protection(alice, user):
    account = MLAccountFactory(owner=user)
    reputation(account, real_level="yellow", protection_end_date=PROTECTED_UNTIL)

    panel = section(page(alice, account_url(account)), "reputation")

    notice = text_of(panel, "reputation-protected")
    assert "15 Mar 2027" in notice and "Yellow" in notice


def test_a_protection_with_a_light_green_real_level_names_it(alice, user):
    account = MLAccountFactory(owner=user)
    reputation(account, real_level="light_green", protection_end_date=PROTECTED_UNTIL)

    notice = text_of(section(page(alice, account_url(account)), "reputation"), "reputation-protected")

    assert "Light green" in notice and "light_green" not in notice


def test_the_charts_are_svg_with_a_data_table_and_no_inline_style(alice, stores):
    brazil, _ = stores
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for n in range(3):
        CountSnapshot.objects.create(
            account=brazil, hour=hour - timedelta(hours=n), products=40 + n, orders=12, questions=n, claims=1
        )
    reputation(brazil, claims="0.02", day=timezone.localdate() - timedelta(days=2))
    body = page(alice, account_url(brazil))

    sections = {name: section(body, name) for name in ("sales", "reputation", "counts-history")}
    for chart_id, name, rows_expected in [
        ("revenue-chart", "sales", 30),
        ("orders-chart", "sales", 30),
        ("reputation-chart", "reputation", 2),
        ("counts-sales-chart", "counts-history", 3),
        ("counts-desk-chart", "counts-history", 3),
    ]:
        chart = figure(sections[name], chart_id)
        assert re.search(r'<svg class="chart-svg" [^>]*role="img"', chart), chart_id
        assert '<details class="chart-data">' in chart, chart_id
        assert table_rows(chart) == rows_expected, chart_id
    assert "Claims limit: 3.00%" in figure(sections["reputation"], "reputation-chart")
    assert "total R$\xa01,500.00" in figure(sections["sales"], "revenue-chart")
    for name, text in sections.items():
        assert "style=" not in text, name


def test_without_data_the_sections_say_so(alice, user):
    account = MLAccountFactory(owner=user)
    body = page(alice, account_url(account))

    panel = section(body, "reputation")
    assert 'id="reputation-none"' in panel and 'id="reputation-rates"' not in panel
    assert '<p class="chart-empty">' in figure(panel, "reputation-chart")
    history = section(body, "counts-history")
    for chart_id in ("counts-sales-chart", "counts-desk-chart"):
        chart = figure(history, chart_id)
        assert '<p class="chart-empty">' in chart and "<svg" not in chart
    sales = section(body, "sales")
    assert text_of(sales, "account-sales-revenue") == "R$\xa00.00"
    # No sale in the window: the charts say so instead of drawing a row of zeros.
    for chart_id in ("revenue-chart", "orders-chart"):
        chart = figure(sales, chart_id)
        assert '<p class="chart-empty">' in chart and "<svg" not in chart
    for name in ("sales", "reputation", "counts-history"):
        assert "style=" not in section(body, name)


def test_the_outsider_gets_404_for_the_account_page(charlie, stores):
    brazil, _ = stores
    for query in ({}, {"days": "7"}, {"days": "abc"}):
        response = charlie.get(account_url(brazil), query)
        assert response.status_code == 404
        assert "1,500.00" not in response.content.decode()


def test_a_viewer_sees_the_sales_and_reputation_sections(agency):
    body = page(agency["victor"], account_url(agency["lua"]))

    for name in ("sales", "reputation", "counts-history"):
        assert f'id="{name}"' in body
    assert text_of(section(body, "sales"), "account-sales-revenue") == "$\xa07,000.00"
    assert 'id="rate-claims" class="is-near"' in section(body, "reputation")


def test_a_scoped_member_gets_404_for_an_account_out_of_scope(agency):
    assert agency["sam"].get(account_url(agency["lua"])).status_code == 404
    assert agency["sam"].get(account_url(agency["sol"])).status_code == 200


def test_the_account_page_costs_the_same_for_1_and_many_orders_and_snapshots(
    alice, user, django_assert_num_queries
):
    few = MLAccountFactory(owner=user)
    many = MLAccountFactory(owner=user, workspace=few.workspace)
    sell(few, amount="10.00")
    reputation(few)
    CountSnapshot.objects.create(
        account=few, hour=timezone.now(), products=1, orders=1, questions=0, claims=0
    )
    services.order_mirror_store(
        account_id=many.pk,
        orders=[
            ml_order(
                amount="10.00",
                status=("paid", "cancelled", "confirmed")[n % 3],
                currency=("BRL", "ARS")[n % 2],
                ago=timedelta(hours=7 * n + 1),
            )
            for n in range(200)
        ],
    )
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    CountSnapshot.objects.bulk_create(
        CountSnapshot(
            account=many, hour=hour - timedelta(hours=n), products=n, orders=n, questions=0, claims=0
        )
        for n in range(24 * 20)
    )
    for n in range(25):
        reputation(many, claims="0.01", day=timezone.localdate() - timedelta(days=n))
    alice.get(account_url(few))  # the first visit remembers the current workspace

    for account, counts in ((few, 1), (many, 24 * 20)):
        with django_assert_num_queries(ACCOUNT_PAGE_QUERIES):
            body = page(alice, account_url(account))
        assert table_rows(figure(body, "counts-sales-chart")) == min(counts, 100)


# --- the desk settings' reputation margin ---------------------------------------------------------


def margin(workspace) -> int:
    return Workspace.objects.get(pk=workspace.pk).reputation_margin_percent


def test_a_manager_sets_the_margin_and_the_warnings_follow_it(agency, user):
    workspace, sol, maria = agency["workspace"], agency["sol"], agency["maria"]
    ReputationSnapshot.objects.filter(account=sol).update(claims_rate=Decimal("0.022"))
    assert margin(workspace) == 20
    before = page(maria, SALES)
    assert f'href="{account_url(sol)}#reputation"' not in before  # 2.2 % < 80 % of 3 %

    response = maria.post(settings_url(workspace), {"action": "margin", "percent": "30"})

    assert response.status_code == 302 and response["Location"] == settings_url(workspace)
    assert margin(workspace) == 30
    after = page(maria, SALES)
    assert f'href="{account_url(sol)}#reputation"' in section(after, "reputation-warnings")
    assert "Claims 2.20% (limit 3.00%)" in after
    assert 'id="rate-claims" class="is-near"' in page(maria, account_url(sol))
    assert 'id="margin-percent" name="percent" min="0" max="90" required value="30"' in page(
        maria, settings_url(workspace)
    )


def test_the_margin_is_the_workspaces_own(agency, alice, stores):
    brazil, _ = stores
    Workspace.objects.filter(pk=agency["workspace"].pk).update(reputation_margin_percent=0)

    # Alice's personal workspace keeps 20 %: 2.6 % warns there; at 0 % in the agency it does not.
    assert f'href="{account_url(brazil)}#reputation"' in page(alice, SALES)
    assert 'id="reputation-warnings"' not in page(agency["victor"], SALES)
    assert "is-near" not in section(page(agency["victor"], account_url(agency["sol"])), "reputation")


@pytest.mark.parametrize("value", ["-1", "91", "abc", "", "2.5"])
def test_an_invalid_margin_is_refused_and_nothing_is_saved(agency, value):
    workspace = agency["workspace"]

    response = agency["maria"].post(settings_url(workspace), {"action": "margin", "percent": value})

    assert response.status_code == 400
    form = section(response.content.decode(), "reputation-margin")
    assert 'aria-invalid="true"' in form
    assert '<p class="field-error">A whole percentage from 0 to 90.</p>' in form
    assert margin(workspace) == 20


@pytest.mark.parametrize("value", ["0", "90"])
def test_the_margins_bounds_are_accepted(agency, value):
    workspace = agency["workspace"]
    response = agency["maria"].post(settings_url(workspace), {"action": "margin", "percent": value})
    assert response.status_code == 302
    assert margin(workspace) == int(value)


def test_operators_and_viewers_see_the_margin_but_cannot_change_it(agency):
    workspace = agency["workspace"]
    for name in ("bob", "victor"):
        response = agency[name].post(settings_url(workspace), {"action": "margin", "percent": "50"})
        assert response.status_code == 403, name
        form = section(page(agency[name], settings_url(workspace)), "reputation-margin")
        assert 'id="margin-value"' in form and "within 20 % of" in text_of(form, "margin-value")
        assert 'name="percent"' not in form
    assert margin(workspace) == 20


def test_the_outsider_gets_404_for_the_margin(charlie, agency):
    workspace = agency["workspace"]
    assert charlie.get(settings_url(workspace)).status_code == 404
    assert charlie.post(settings_url(workspace), {"action": "margin", "percent": "50"}).status_code == 404
    assert margin(workspace) == 20


def test_anonymous_cannot_change_the_margin(client, agency):
    workspace = agency["workspace"]
    response = client.post(settings_url(workspace), {"action": "margin", "percent": "50"})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN + "?next=")
    assert margin(workspace) == 20
