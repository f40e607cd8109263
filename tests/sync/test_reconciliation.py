"""Accounts whose ML notifications arrive are polled only as a reconciliation (issue 13).

`services.mlaccount_record_sync_success` schedules them ML_RECONCILE_INTERVAL ahead unless
the poll found a count that had changed without a notification; `schedule` plans the
budget with the same rule. One conditional UPDATE computed by the database: these run on
SQLite and on PostgreSQL alike (CI runs the suite on both).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.mercadolivre.resources import Counts
from accounts.models import COUNT_BITS, MLAccount
from sync import engine, schedule
from tests.factories import MLAccountFactory
from tests.mlmock import add_counts

pytestmark = pytest.mark.django_db

STORED = {"cached_products": 12, "cached_orders": 5, "cached_questions": 3, "cached_claims": 1}
SAME = Counts(products=12, orders=5, questions=3, claims=1)


@pytest.fixture(autouse=True)
def _intervals(settings):
    settings.ML_RECONCILE_INTERVAL = 3600
    settings.ML_NOTIFICATIONS_SILENT_AFTER = 2 * 3600


def _account(user, *, notified_ago=None, **fields):
    now = timezone.now()
    fields.setdefault("sync_interval", 300)
    fields.setdefault("cached_at", now - timedelta(minutes=5))
    for column, value in STORED.items():
        fields.setdefault(column, value)
    if notified_ago is not None:
        fields["last_notification_at"] = now - notified_ago
    return MLAccountFactory(owner=user, **fields)


def _sync(account, counts=SAME, synced_at=None) -> MLAccount:
    synced_at = synced_at or timezone.now()
    services.mlaccount_record_sync_success(account_id=account.pk, counts=counts, synced_at=synced_at)
    account.refresh_from_db()
    return account


def test_an_account_fed_by_notifications_is_next_polled_at_the_reconcile_interval(user):
    account = _account(user, notified_ago=timedelta(minutes=10))
    synced_at = timezone.now()

    account = _sync(account, synced_at=synced_at)

    assert account.next_sync == synced_at + timedelta(seconds=3600)
    assert (account.last_poll_change_at, account.poll_change_mask) == (None, 0)
    assert (account.last_sync, account.cached_at, account.last_sync_status) == (
        synced_at,
        synced_at,
        "success",
    )


def test_the_reconcile_interval_follows_the_setting(user, settings):
    settings.ML_RECONCILE_INTERVAL = 1800
    account = _account(user, notified_ago=timedelta(minutes=10))
    synced_at = timezone.now()

    assert _sync(account, synced_at=synced_at).next_sync == synced_at + timedelta(seconds=1800)


def test_a_change_the_notifications_missed_brings_back_the_own_interval(user):
    account = _account(user, notified_ago=timedelta(minutes=10))
    synced_at = timezone.now()

    account = _sync(account, Counts(products=12, orders=5, questions=4, claims=1), synced_at=synced_at)

    assert account.next_sync == synced_at + timedelta(seconds=300)
    assert account.last_poll_change_at == synced_at
    assert account.poll_change_mask == COUNT_BITS["cached_questions"]
    assert account.cached_questions == 4


def test_every_changed_count_sets_its_own_bit(user):
    account = _account(user, notified_ago=timedelta(minutes=10))

    account = _sync(account, Counts(products=13, orders=5, questions=3, claims=0))

    assert account.poll_change_mask == COUNT_BITS["cached_products"] | COUNT_BITS["cached_claims"] == 9


def test_changes_accumulate_within_the_window_and_start_over_after_it(user):
    now = timezone.now()
    recent = _account(
        user,
        notified_ago=timedelta(minutes=10),
        last_poll_change_at=now - timedelta(minutes=30),
        poll_change_mask=COUNT_BITS["cached_questions"],
    )
    stale = _account(
        user,
        notified_ago=timedelta(minutes=10),
        last_poll_change_at=now - timedelta(hours=3),
        poll_change_mask=COUNT_BITS["cached_questions"],
    )
    orders_changed = Counts(products=12, orders=6, questions=3, claims=1)

    recent = _sync(recent, orders_changed, synced_at=now)
    stale = _sync(stale, orders_changed, synced_at=now)

    assert recent.poll_change_mask == COUNT_BITS["cached_questions"] | COUNT_BITS["cached_orders"]
    assert stale.poll_change_mask == COUNT_BITS["cached_orders"]
    assert recent.last_poll_change_at == stale.last_poll_change_at == now


def test_a_poll_without_changes_keeps_the_earlier_findings(user):
    earlier = timezone.now() - timedelta(minutes=30)
    account = _account(
        user,
        notified_ago=timedelta(minutes=10),
        last_poll_change_at=earlier,
        poll_change_mask=COUNT_BITS["cached_orders"],
    )
    synced_at = timezone.now()

    account = _sync(account, synced_at=synced_at)

    assert (account.last_poll_change_at, account.poll_change_mask) == (earlier, COUNT_BITS["cached_orders"])
    assert account.next_sync == synced_at + timedelta(seconds=3600)


@pytest.mark.parametrize("notified_ago", [None, timedelta(hours=2, seconds=1), timedelta(days=3)])
def test_without_a_recent_notification_the_account_keeps_its_own_interval(user, notified_ago):
    account = _account(user, notified_ago=notified_ago)
    synced_at = timezone.now()

    account = _sync(account, synced_at=synced_at)

    assert account.next_sync == synced_at + timedelta(seconds=300)


def test_a_notification_just_inside_the_silent_window_still_counts(user):
    synced_at = timezone.now()
    account = _account(user, last_notification_at=synced_at - timedelta(hours=2) + timedelta(seconds=1))

    assert _sync(account, synced_at=synced_at).next_sync == synced_at + timedelta(seconds=3600)


def test_a_change_is_noted_for_an_account_without_notifications_too(user):
    account = _account(user)
    synced_at = timezone.now()

    account = _sync(account, Counts(products=12, orders=9, questions=3, claims=1), synced_at=synced_at)

    assert (account.last_poll_change_at, account.poll_change_mask) == (synced_at, COUNT_BITS["cached_orders"])
    assert account.next_sync == synced_at + timedelta(seconds=300)


def test_the_first_sync_is_not_a_change(user):
    account = _account(
        user,
        notified_ago=timedelta(minutes=10),
        cached_at=None,
        # Never read: the columns are empty until a sync or a notification reads them.
        cached_products=None,
        cached_orders=None,
        cached_questions=None,
        cached_claims=None,
    )
    synced_at = timezone.now()

    account = _sync(account, Counts(products=120, orders=33, questions=4, claims=2), synced_at=synced_at)

    assert (account.last_poll_change_at, account.poll_change_mask) == (None, 0)
    assert account.next_sync == synced_at + timedelta(seconds=3600)
    assert (account.cached_products, account.cached_claims) == (120, 2)


def test_counts_never_read_are_not_changes_when_a_notification_came_before_the_first_sync(user):
    # A seller connected a moment ago: a questions notification is processed before the
    # first sync finishes (or while it keeps failing), storing that one count.
    account = _account(
        user,
        cached_at=None,
        # Never read: the columns are empty until a sync or a notification reads them.
        cached_products=None,
        cached_orders=None,
        cached_questions=None,
        cached_claims=None,
        next_sync=timezone.now(),
    )
    notified_at = timezone.now()
    services.mlaccount_note_notifications(account_id=account.pk, notified_at=notified_at)
    services.mlaccount_set_count(account_id=account.pk, field="cached_questions", value=4)
    synced_at = timezone.now()

    account = _sync(account, Counts(products=120, orders=33, questions=4, claims=2), synced_at=synced_at)

    # Listings, orders and claims were never read before: nothing was missed, no warning.
    assert (account.last_poll_change_at, account.poll_change_mask) == (None, 0)
    assert account.next_sync == synced_at + timedelta(seconds=3600)


def test_an_own_interval_longer_than_the_reconciliation_is_kept(user):
    account = _account(user, notified_ago=timedelta(minutes=10), sync_interval=7200)
    synced_at = timezone.now()

    assert _sync(account, synced_at=synced_at).next_sync == synced_at + timedelta(seconds=7200)


@pytest.mark.parametrize("fields", [{"status": "paused", "sync_enabled": False}, {"sync_enabled": False}])
@pytest.mark.parametrize("changed", [False, True])
def test_a_paused_account_stays_unscheduled(user, fields, changed):
    account = _account(user, notified_ago=timedelta(minutes=10), next_sync=None, **fields)
    counts = Counts(products=12, orders=5, questions=9, claims=1) if changed else SAME

    account = _sync(account, counts)

    assert account.next_sync is None
    assert account.status == fields.get("status", "active")


def test_a_sync_through_the_engine_schedules_a_fed_account_for_reconciliation(user, ml):
    account = _account(user, notified_ago=timedelta(minutes=10), next_sync=timezone.now())
    add_counts(ml, products=12, orders=5, questions=3, claims=1)

    result = engine.sync_account(account.pk)

    assert result.outcome == "success"
    assert len(ml.calls) == 5  # the four counts' calls and the day's reputation
    account.refresh_from_db()
    assert account.next_sync == result.synced_at + timedelta(seconds=3600)
    assert account.poll_change_mask == 0


# --- the schedule's view of it ---------------------------------------------------------------------


def test_effective_interval_of_a_fed_account(user):
    now = timezone.now()
    fed = _account(user, last_notification_at=now - timedelta(minutes=5))
    silent = _account(user, last_notification_at=now - timedelta(hours=3))
    never = _account(user)
    slow = _account(user, last_notification_at=now - timedelta(minutes=5), sync_interval=7200)
    failing = _account(user, last_notification_at=now, status="error", error_count=7)
    paused = _account(user, last_notification_at=now, status="paused", sync_enabled=False)

    assert schedule.notifications_arrive(fed) and not schedule.notifications_arrive(silent)
    assert not schedule.notifications_arrive(never)
    assert schedule.effective_interval(fed, budget_cycle=None) == 3600
    assert schedule.effective_interval(fed, budget_cycle=5000) == 5000
    assert schedule.effective_interval(silent, budget_cycle=None) == 300
    assert schedule.effective_interval(never, budget_cycle=None) == 300
    assert schedule.effective_interval(slow, budget_cycle=None) == 7200
    # An account in error retries at its back-off, notifications or not.
    assert schedule.effective_interval(failing, budget_cycle=None) == services.error_backoff_seconds(
        sync_interval=300, error_count=7
    )
    assert schedule.effective_interval(paused, budget_cycle=None) is None


def test_budget_cycle_counts_fed_accounts_at_the_reconcile_interval(settings):
    settings.ML_REQUESTS_PER_SECOND = 5
    settings.SYNC_BUDGET_SHARE = 0.95
    per_second = 5 * 0.95 / 4
    polled = {"status": "active", "sync_interval": 300, "error_count": 0, "fed": False, "n": 1000}
    fed = {"status": "active", "sync_interval": 300, "error_count": 0, "fed": True, "n": 2000}

    # 1,000 accounts at 5 minutes outgrow the budget; as many fed ones, hourly, do not.
    assert schedule.budget_cycle_seconds([polled]) == pytest.approx(1000 / per_second, abs=1)
    assert schedule.budget_cycle_seconds([{**polled, "fed": True}]) is None
    # Together: the fed ones take 2000/3600 a second, the others share what is left.
    cycle = schedule.budget_cycle_seconds([polled, fed])
    assert cycle == pytest.approx(1000 / (per_second - 2000 / 3600), abs=1)
    assert cycle < 3600


def test_budget_cycle_reads_which_accounts_are_fed_from_the_database(user, settings):
    settings.ML_REQUESTS_PER_SECOND = 0.01  # 0.002375 syncs a second
    per_second = 0.01 * 0.95 / 4
    now = timezone.now()
    for _ in range(2):
        _account(user, sync_interval=300)
    for _ in range(3):
        _account(user, sync_interval=300, last_notification_at=now - timedelta(minutes=1))

    cycle = schedule.budget_cycle_seconds()

    # The three fed accounts take 3/3600 a second; the two polled ones share the rest.
    assert cycle == pytest.approx(2 / (per_second - 3 / 3600), abs=1)
    assert cycle < 5 / per_second  # what it would be if none were fed
    settings.ML_REQUESTS_PER_SECOND = 0.05  # 0.011875 a second: 2/300 + 3/3600 fits
    assert schedule.budget_cycle_seconds() is None


def test_fewer_orders_in_the_30_day_window_is_not_a_missed_notification(user):
    # Old sales leave the orders window with no notification: only a rise is a missed sale.
    account = _account(user, notified_ago=timedelta(minutes=10), **STORED)
    synced_at = timezone.now()

    account = _sync(account, Counts(products=12, orders=2, questions=3, claims=1), synced_at=synced_at)

    assert (account.last_poll_change_at, account.poll_change_mask) == (None, 0)
    assert account.cached_orders == 2
    assert account.next_sync == synced_at + timedelta(seconds=3600)
