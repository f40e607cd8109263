"""Writes of the sales mirrors: orders, the orders read's progress, reputation and count snapshots.

Called by the sync (sync.mirrors), by notification processing and by the periodic jobs.
Each write is one or two statements; upserts are keyed on ML's ids (orders) or on
(account, day) and (account, hour), so a page read twice (the hour of overlap, a sync
retried after a 401) is simply stored again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import AccountValidationError
from accounts.mercadolivre import sales as ml_sales
from accounts.mercadolivre.resources import Counts
from accounts.models import (
    COUNT_HISTORY_DAYS,
    MAX_REPUTATION_MARGIN_PERCENT,
    AccountStatus,
    AuditAction,
    CountSnapshot,
    MLAccount,
    Order,
    ReputationSnapshot,
    Workspace,
)
from accounts.services.alerts import alert_reputation_check
from accounts.services.audit import audit_record

_ORDER_FIELDS = [
    "status",
    "total_amount",
    "paid_amount",
    "currency",
    "date_created",
    "date_closed",
    "date_last_updated",
    "pack_id",
    "items",
    "sale_fees",
    "stored_at",
]
SNAPSHOT_BATCH = 1000


def order_mirror_store(*, account_id, orders: Iterable[ml_sales.MLOrder], at: datetime | None = None) -> int:
    """Upsert the orders ML listed for the account; return how many were written.

    An order the mirror holds with a newer `date_last_updated` is left alone (§11.1: a read
    older than what is stored changes nothing): a notification's fresh read and an older
    page of a long read may arrive in either order. (The check and the upsert are two
    statements: a read racing another can still win, and the next read, an hour of overlap
    later, brings the newer one back.) An id the mirror holds for
    another account (ML's ids are unique: it cannot happen) is not moved.
    """
    rows = {order.id: order for order in orders}
    if not rows:
        return 0
    at = at or timezone.now()
    held = dict(Order.objects.filter(pk__in=rows).values_list("pk", "date_last_updated"))
    objects = [
        Order(
            id=o.id,
            account_id=account_id,
            status=o.status,
            total_amount=o.total_amount,
            paid_amount=o.paid_amount,
            currency=o.currency,
            date_created=o.date_created,
            date_closed=o.date_closed,
            date_last_updated=o.date_last_updated,
            pack_id=o.pack_id,
            items=o.items,
            sale_fees=o.sale_fees,
            stored_at=at,
        )
        for o in rows.values()
        if o.id not in held or held[o.id] <= o.date_last_updated
    ]
    if objects:
        Order.objects.bulk_create(
            objects, update_conflicts=True, unique_fields=["id"], update_fields=_ORDER_FIELDS
        )
    return len(objects)


def mlaccount_orders_progress(*, account_id, started_at: datetime, offset: int) -> None:
    """A read of the orders stopped after its pages for this sync: the next one goes on from `offset`."""
    MLAccount.objects.filter(pk=account_id).update(orders_read_started_at=started_at, orders_offset=offset)


def mlaccount_orders_synced(*, account_id, synced_at: datetime) -> None:
    """Every order ML changed before `synced_at` is mirrored: the next read starts from there."""
    MLAccount.objects.filter(pk=account_id).update(
        orders_synced_at=synced_at, orders_read_started_at=None, orders_offset=0
    )


def reputation_snapshot_store(
    *, account_id, reputation: ml_sales.MLReputation, day: date, at: datetime
) -> None:
    """Store the account's reputation of `day` (a later read of the same day replaces it)."""
    values = {
        "taken_at": at,
        "level_id": reputation.level_id,
        "power_seller_status": reputation.power_seller_status,
        "real_level": reputation.real_level,
        "protection_end_date": reputation.protection_end_date,
        "period": reputation.period,
        "transactions_total": reputation.transactions_total,
        "transactions_completed": reputation.transactions_completed,
        "transactions_canceled": reputation.transactions_canceled,
        "sales_completed": reputation.sales_completed,
        "claims_rate": reputation.claims.rate,
        "claims_value": reputation.claims.value,
        "delayed_handling_rate": reputation.delayed_handling_time.rate,
        "delayed_handling_value": reputation.delayed_handling_time.value,
        "cancellations_rate": reputation.cancellations.rate,
        "cancellations_value": reputation.cancellations.value,
    }
    snapshot = ReputationSnapshot(account_id=account_id, day=day, **values)
    ReputationSnapshot.objects.bulk_create(
        [snapshot],
        update_conflicts=True,
        unique_fields=["account", "day"],
        update_fields=list(values),
    )
    MLAccount.objects.filter(pk=account_id).update(reputation_day=day)
    alert_reputation_check(account_id=account_id, snapshot=snapshot, now=at)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def count_snapshot_record(*, account_id, counts: Counts, at: datetime) -> None:
    """Keep the counts as the account's snapshot of this hour (the last ones of the hour win)."""
    CountSnapshot.objects.bulk_create(
        [
            CountSnapshot(
                account_id=account_id,
                hour=_hour(at),
                products=counts.products,
                orders=counts.orders,
                questions=counts.questions,
                claims=counts.claims,
            )
        ],
        update_conflicts=True,
        unique_fields=["account", "hour"],
        update_fields=["products", "orders", "questions", "claims"],
    )


def count_snapshot_refresh(*, account_id, at: datetime) -> None:
    """After one count changed (a notification), this hour's snapshot takes the account's counts."""
    row = (
        MLAccount.objects.filter(pk=account_id)
        .values_list("cached_products", "cached_orders", "cached_questions", "cached_claims")
        .first()
    )
    if row is not None:
        count_snapshot_record(account_id=account_id, counts=Counts(*row), at=at)


def count_snapshots_fill(*, now: datetime | None = None) -> int:
    """Give every synced account a snapshot of the current hour, from its stored counts.

    The hourly job: an account that neither synced nor heard from ML this hour still gets
    its point in the history. Those with a snapshot of the hour keep it. Returns how many
    were added.
    """
    hour = _hour(now or timezone.now())
    accounts = (
        MLAccount.objects.exclude(cached_at=None)
        .exclude(status=AccountStatus.EXPIRED)
        .exclude(count_snapshots__hour=hour)
        .values_list("pk", "cached_products", "cached_orders", "cached_questions", "cached_claims")
        .order_by()
    )
    added, batch = 0, []
    for pk, products, orders, questions, claims in accounts.iterator(chunk_size=SNAPSHOT_BATCH):
        batch.append(
            CountSnapshot(
                account_id=pk, hour=hour, products=products, orders=orders, questions=questions, claims=claims
            )
        )
        if len(batch) == SNAPSHOT_BATCH:
            added += len(CountSnapshot.objects.bulk_create(batch, ignore_conflicts=True))
            batch = []
    if batch:
        added += len(CountSnapshot.objects.bulk_create(batch, ignore_conflicts=True))
    return added


def count_snapshot_cleanup(*, now: datetime | None = None) -> int:
    """Delete count snapshots older than COUNT_HISTORY_DAYS; return how many."""
    before = (now or timezone.now()) - timedelta(days=COUNT_HISTORY_DAYS)
    deleted, _ = CountSnapshot.objects.filter(Q(hour__lt=before)).delete()
    return deleted


def workspace_set_reputation_margin(*, workspace: Workspace, percent) -> Workspace:
    """Set how near ML's limit a reputation rate may come before the pages warn (% of the limit)."""
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int)
        or not 0 <= percent <= MAX_REPUTATION_MARGIN_PERCENT
    ):
        raise AccountValidationError(
            {
                "reputation_margin_percent": [
                    _("A whole percentage from 0 to %(max)d.") % {"max": MAX_REPUTATION_MARGIN_PERCENT}
                ]
            }
        )
    was = workspace.reputation_margin_percent
    Workspace.objects.filter(pk=workspace.pk).update(reputation_margin_percent=percent)
    workspace.reputation_margin_percent = percent
    if was != percent:
        audit_record(
            action=AuditAction.SETTINGS,
            workspace=workspace,
            changes={"reputation_margin_percent": [was, percent]},
        )
    return workspace
