"""The sync engine's and the background jobs' writes: claims, outcomes, tokens, dispatch."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import (
    Case,
    DateTimeField,
    Expression,
    F,
    Field,
    IntegerField,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import Exact
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from accounts import selectors
from accounts.expressions import seconds_after
from accounts.mercadolivre.resources import Counts
from accounts.models import (
    COUNT_BITS,
    ERROR_STATUS_AFTER,
    AccountStatus,
    EventKind,
    MLAccount,
    SyncStatus,
)
from accounts.services.alerts import alert_account_check
from accounts.services.events import event_record

MAX_ERROR_BACKOFF = 3600  # an account in error is retried at least hourly


# --- The sync's two statements, compiled once ------------------------------------------------


class _Param(Expression):
    """A placeholder in a _CompiledUpdate: its value, `name`, is given at each run."""

    def __init__(self, name: str, output_field: Field):
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", [self]


class _CompiledUpdate:
    """An UPDATE of MLAccount that the ORM compiles once per database, then binds afresh.

    A sync runs two statements, its claim and its success, and compiling them (resolving
    the lookups and the conditional columns, writing the SQL) costs the worker several
    times what running them costs the database. So `build` makes the query once, with a
    `_Param` wherever a value changes; each run only prepares those values the way the ORM
    does (the field's get_db_prep_value). The SQL and the parameters are the ORM's own.
    """

    def __init__(self, build: Callable[[], UpdateQuery]):
        self._build = build
        self._compiled: dict[tuple[str, str], tuple[str, tuple]] = {}

    def bind(self, connection, **values) -> tuple[str, list]:
        """The SQL and its parameters for `connection`, with `values` for the placeholders."""
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            sql, params = self._build().get_compiler(connection=connection).as_sql()
            compiled = self._compiled[key] = (sql, tuple(params))
        sql, template = compiled
        return sql, [
            param.output_field.get_db_prep_value(values[param.name], connection)
            if isinstance(param, _Param)
            else param
            for param in template
        ]


def _claim_query() -> UpdateQuery:
    query = (
        MLAccount.objects.filter(pk=_Param("account_id", MLAccount._meta.pk))
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=_Param("stale", DateTimeField())))
        .query.chain(UpdateQuery)
    )
    query.add_update_values(
        {"sync_started_at": _Param("now", DateTimeField()), "last_sync_status": SyncStatus.IN_PROGRESS}
    )
    return query


_CLAIM = _CompiledUpdate(_claim_query)


def _in_model_order(names) -> tuple[str, ...]:
    """`names` in the order of the model's fields, the order `Model.from_db` expects values in."""
    wanted = set(names)
    return tuple(field.attname for field in MLAccount._meta.concrete_fields if field.attname in wanted)


def _from_row(connection, names: tuple[str, ...], row) -> MLAccount:
    """An MLAccount with the columns `names` (in model order) as the ORM reads them (decrypted, parsed)."""
    values = []
    for name, value in zip(names, row, strict=True):
        field = MLAccount._meta.get_field(name)
        column = field.get_col(MLAccount._meta.db_table)
        for convert in (*connection.ops.get_db_converters(column), *field.get_db_converters(connection)):
            value = convert(value, column, connection)
        values.append(value)
    return MLAccount.from_db(connection.alias, names, values)


def mlaccount_claim(
    *, account_id, lease_seconds: int, now: datetime | None = None, fields: tuple[str, ...] = ()
) -> MLAccount | None:
    """Take the sync claim with one conditional UPDATE; return the account as it left it.

    None if another sync holds the claim or the account is gone (selectors tell which). A
    claim older than the lease counts as abandoned (its worker died) and may be taken.
    The UPDATE returns (RETURNING: PostgreSQL, SQLite 3.35+) the row's ml_user_id and the
    `fields` asked for (the sync asks for its token's state), which saves the engine a
    SELECT per sync: the returned instance has only those, the others are deferred.
    """
    now = now or timezone.now()
    connection = connections[router.db_for_write(MLAccount)]
    sql, params = _CLAIM.bind(
        connection, account_id=account_id, now=now, stale=now - timedelta(seconds=lease_seconds)
    )
    names = _in_model_order(("id", "ml_user_id", *fields))
    quote = connection.ops.quote_name
    returning = ", ".join(quote(MLAccount._meta.get_field(name).column) for name in names)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {returning}", params)
        row = cursor.fetchone()
    return _from_row(connection, names, row) if row else None


def mlaccount_release(*, account_id, claimed_at: datetime) -> None:
    """Drop our claim if we still hold it (no-op after success/failure already released it)."""
    MLAccount.objects.filter(pk=account_id, sync_started_at=claimed_at).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
    )


def _changed(column: str) -> Q:
    """The sync read a different `column` count than the one stored (a count never read,
    the first sync's or one only a notification has read so far, is not a change).

    The orders count is of the last 30 days: it falls as old sales leave the window, with no
    notification to say so. Only a rise (a sale that no notification brought) counts there.
    """
    read = _Param(column, IntegerField())
    if column == "cached_orders":
        return Q(cached_orders__isnull=False) & Q(cached_orders__lt=read)
    return Q(**{f"{column}__isnull": False}) & ~Q(**{column: read})


def _success_query() -> UpdateQuery:
    synced_at = _Param("synced_at", DateTimeField())
    # Which counts changed since they were last stored (by a sync or a notification): a
    # bit each (COUNT_BITS). Summed, the bits are the mask of this sync's changes.
    found = sum(
        (
            Case(When(_changed(column), then=Value(bit)), default=Value(0))
            for column, bit in COUNT_BITS.items()
        ),
        start=Value(0),
    )
    changed = Q()
    for column in COUNT_BITS:
        changed |= _changed(column)
    recent_change = Q(last_poll_change_at__gte=_Param("fed_since", DateTimeField()))
    # An account whose notifications arrive (one within ML_NOTIFICATIONS_SILENT_AFTER) is
    # polled only as a reconciliation, every ML_RECONCILE_INTERVAL, unless this very poll
    # found a change that no notification had brought: then at its own interval again.
    # An account whose orders mirror is still importing (a read in progress) keeps its own
    # interval too, so the import does not wait an hour between pages.
    fed = (
        Q(last_notification_at__gte=_Param("fed_since", DateTimeField()))
        & ~changed
        & Q(orders_read_started_at__isnull=True)
    )
    reconcile = _Param("reconcile", IntegerField())
    query = MLAccount.objects.filter(pk=_Param("account_id", MLAccount._meta.pk)).query.chain(UpdateQuery)
    query.add_update_values(
        {
            # A "sync requested" mark set before the claim is served by this sync; with no
            # `started_at` (NULL) the comparison is not true and the mark stays.
            "sync_requested_at": Case(
                When(sync_requested_at__lte=_Param("started_at", DateTimeField()), then=Value(None)),
                default=F("sync_requested_at"),
            ),
            "cached_products": _Param("cached_products", IntegerField()),
            "cached_orders": _Param("cached_orders", IntegerField()),
            "cached_questions": _Param("cached_questions", IntegerField()),
            "cached_claims": _Param("cached_claims", IntegerField()),
            "last_poll_change_at": Case(
                When(changed, then=synced_at), default=F("last_poll_change_at"), output_field=DateTimeField()
            ),
            # The counts this poll found changed, with those found earlier in the window.
            "poll_change_mask": Case(
                When(changed & recent_change, then=found.bitor(F("poll_change_mask"))),
                When(changed, then=found),
                default=F("poll_change_mask"),
                output_field=IntegerField(),
            ),
            "cached_at": synced_at,
            "last_sync": synced_at,
            "last_sync_status": SyncStatus.SUCCESS,
            "last_sync_error": "",
            "error_count": 0,
            "sync_started_at": None,
            # A success means the account works: `active`, whatever it was (an `expired`
            # account synced through the API after its grant came back included), unless
            # the user paused it, possibly while this sync ran.
            "status": Case(
                When(status=AccountStatus.PAUSED, then=Value(AccountStatus.PAUSED)),
                default=Value(AccountStatus.ACTIVE),
            ),
            "disconnected_at": None,
            "next_sync": Case(
                When(
                    Q(sync_enabled=True) & fed & Q(sync_interval__lt=reconcile),
                    then=seconds_after(synced_at, reconcile),
                ),
                When(sync_enabled=True, then=seconds_after(synced_at, F("sync_interval"))),
                default=Value(None, output_field=DateTimeField()),
            ),
            "updated_at": synced_at,
        }
    )
    return query


_SUCCESS = _CompiledUpdate(_success_query)


def mlaccount_record_sync_success(
    *, account_id, counts: Counts, synced_at: datetime | None = None, started_at: datetime | None = None
) -> None:
    """Save the counts of a successful sync, reset the error streak and schedule the next one.

    One conditional UPDATE, no transaction: what depends on the row's current state (a
    pause, the interval) is computed by the database as it writes, so a pause or an
    interval change made while the sync ran is kept as a row lock would keep it. With
    `started_at` (when the sync took its claim) it also drops a "sync requested" mark set
    before then, which this sync served. An account removed meanwhile updates nothing.

    It also notes the counts that changed since they were stored (`last_poll_change_at`,
    `poll_change_mask`), and schedules an account whose ML notifications arrive (one within
    ML_NOTIFICATIONS_SILENT_AFTER) at ML_RECONCILE_INTERVAL rather than its own interval,
    unless this poll found a change that the notifications had missed.
    """
    synced_at = synced_at or timezone.now()
    connection = connections[router.db_for_write(MLAccount)]
    sql, params = _SUCCESS.bind(
        connection,
        account_id=account_id,
        synced_at=synced_at,
        started_at=started_at,
        cached_products=counts.products,
        cached_orders=counts.orders,
        cached_questions=counts.questions,
        cached_claims=counts.claims,
        fed_since=synced_at - timedelta(seconds=settings.ML_NOTIFICATIONS_SILENT_AFTER),
        reconcile=settings.ML_RECONCILE_INTERVAL,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def error_backoff_seconds(*, sync_interval: int, error_count: int) -> int:
    """Interval before the next try of an account in `error`: its own, doubling, at most an hour."""
    doublings = max(0, error_count - ERROR_STATUS_AFTER + 1)
    return int(
        min(max(sync_interval, 1) * math.pow(2, min(doublings, 20)), max(MAX_ERROR_BACKOFF, sync_interval))
    )


@transaction.atomic
def mlaccount_record_sync_failure(
    *,
    account_id,
    kind: str,
    message: str,
    http_status: int | None = None,
    auth_failure: bool = False,
    failed_at: datetime | None = None,
    record_event: bool = True,
) -> MLAccount | None:
    """Record a failed sync: an event, the error streak, and the status it leads to.

    An authorization failure (the token cannot be renewed) marks the account `expired`.
    Transient failures mark it `error` after ERROR_STATUS_AFTER in a row; it keeps being
    tried with a growing interval. Tokens are never touched here.
    """
    failed_at = failed_at or timezone.now()
    account = (
        MLAccount.objects.select_for_update().defer(*MLAccount.SECRET_FIELDS).filter(pk=account_id).first()
    )
    if account is None:  # removed while it synced
        return None
    if record_event:
        event_record(account_id=account_id, kind=kind, message=message, http_status=http_status)
    error_count = account.error_count + 1
    status = account.status
    disconnected_at = account.disconnected_at
    if auth_failure:
        status = AccountStatus.EXPIRED
        disconnected_at = disconnected_at or failed_at
    elif error_count >= ERROR_STATUS_AFTER and status == AccountStatus.ACTIVE:
        status = AccountStatus.ERROR
    if status == AccountStatus.ERROR:
        delay = error_backoff_seconds(sync_interval=account.sync_interval, error_count=error_count)
    else:
        delay = account.sync_interval
    next_sync = failed_at + timedelta(seconds=delay) if account.sync_enabled else None
    MLAccount.objects.filter(pk=account_id).update(
        error_count=error_count,
        status=status,
        disconnected_at=disconnected_at,
        last_sync_status=SyncStatus.FAILED,
        last_sync_error=str(message)[:2000],
        sync_started_at=None,
        next_sync=next_sync,
        updated_at=failed_at,
    )
    account.refresh_from_db()
    if auth_failure:  # a dead grant is news at once; the minute sweep sees the rest
        alert_account_check(account_id=account_id, now=failed_at)
    return account


@transaction.atomic
def mlaccount_mark_expired(*, account_id, message: str, http_status: int | None = None) -> None:
    """The token can no longer be renewed: reconnect needed. Tokens are kept for diagnosis."""
    event_record(account_id=account_id, kind=EventKind.AUTH, message=message, http_status=http_status)
    now = timezone.now()
    MLAccount.objects.filter(pk=account_id).update(
        status=AccountStatus.EXPIRED,
        disconnected_at=Coalesce(F("disconnected_at"), Value(now)),
        updated_at=now,
    )
    alert_account_check(account_id=account_id, now=now)


# --- the token refresh lease (accounts.tokens) ------------------------------------------------------


@dataclass(frozen=True)
class RefreshClaim:
    """A held refresh lease and the refresh token it may spend.

    `refresh_cipher` is the stored ciphertext of that token: encryption is randomised, so
    it changes whenever anybody stores a pair, and "still the token we used" is a plain
    equality in SQL.
    """

    account_id: str
    claim: uuid.UUID
    refresh_token: str | None
    refresh_cipher: str | None


def _refresh_cipher():
    # The column as stored, not decrypted (a plain TextField reads it as it is).
    return Cast("refresh_token", output_field=TextField())


def _held(claim: RefreshClaim) -> Q:
    """Rows where `claim` still holds the lease and the refresh token has not changed."""
    return Q(pk=claim.account_id, refresh_claim=claim.claim) & Q(
        Exact(_refresh_cipher(), claim.refresh_cipher)
        if claim.refresh_cipher is not None
        else Q(refresh_token__isnull=True)
    )


def mlaccount_refresh_claim(
    *, account_id, lease_seconds: float, now: datetime | None = None
) -> RefreshClaim | None:
    """Take the account's token refresh lease with a conditional UPDATE; None if it is held.

    A lease past its expiry was abandoned (its process died or hung) and may be taken
    over. No transaction stays open: the caller calls ML holding only the lease.
    """
    now = now or timezone.now()
    claim = uuid.uuid4()
    taken = (
        MLAccount.objects.filter(pk=account_id)
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now))
        .update(refresh_claim=claim, refresh_lease_until=now + timedelta(seconds=lease_seconds))
    )
    if not taken:
        return None
    row = (
        MLAccount.objects.filter(pk=account_id, refresh_claim=claim)
        .annotate(refresh_cipher=_refresh_cipher())
        .values_list("refresh_token", "refresh_cipher")
        .first()
    )
    if row is None:  # removed in between
        return None
    return RefreshClaim(str(account_id), claim, row[0], row[1])


def mlaccount_refresh_store(
    *,
    claim: RefreshClaim,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime,
    scopes: str = "",
    refreshed_at: datetime | None = None,
) -> bool:
    """Save the pair ML renewed and release the lease; False (nothing saved) if we lost it.

    Only while `claim` still holds the lease and the stored refresh token is the one spent:
    a newer pair (a reconnect meanwhile) is never overwritten with an older one.
    """
    refreshed_at = refreshed_at or timezone.now()
    account = MLAccount(pk=claim.account_id)
    account.access_token = access_token
    # ML rotates the refresh token on every use; keep the old one only if none came back.
    fields = ["access_token", "token_expires_at", "token_obtained_at", "last_token_refresh", "updated_at"]
    if refresh_token:
        account.refresh_token = refresh_token
        fields.append("refresh_token")
    if scopes:
        account.token_scopes = scopes[:2000]
        fields.append("token_scopes")
    account.token_expires_at = expires_at
    account.token_obtained_at = refreshed_at
    account.last_token_refresh = refreshed_at
    account.updated_at = refreshed_at
    return bool(
        MLAccount.objects.filter(_held(claim)).update(
            refresh_claim=None,
            refresh_lease_until=None,
            **{field: getattr(account, field) for field in fields},
        )
    )


@transaction.atomic
def mlaccount_refresh_refused(*, claim: RefreshClaim, message: str, http_status: int | None = None) -> bool:
    """ML refused the refresh token (invalid_grant): mark the account `expired`, release.

    Only if the stored refresh token is still the one refused (and our lease holds): a
    pair stored meanwhile (a reconnect) is alive, and the account is left alone. Returns
    whether the account was marked.
    """
    now = timezone.now()
    marked = MLAccount.objects.filter(_held(claim)).update(
        status=AccountStatus.EXPIRED,
        disconnected_at=Coalesce(F("disconnected_at"), Value(now)),
        refresh_claim=None,
        refresh_lease_until=None,
        updated_at=now,
    )
    if marked:
        event_record(
            account_id=claim.account_id, kind=EventKind.AUTH, message=message, http_status=http_status
        )
        alert_account_check(account_id=claim.account_id, now=now)
    else:
        mlaccount_refresh_release(claim=claim)
    return bool(marked)


def mlaccount_refresh_release(*, claim: RefreshClaim) -> None:
    """Give the refresh lease back (a transient failure), if we still hold it."""
    MLAccount.objects.filter(pk=claim.account_id, refresh_claim=claim.claim).update(
        refresh_claim=None, refresh_lease_until=None
    )


@transaction.atomic
def mlaccount_dispatch_due(
    *,
    lease_seconds: int,
    limit: int | None = None,
    now: datetime | None = None,
    lookahead_seconds: float = 0,
) -> list[str]:
    """Pick the accounts whose scheduled sync should start now; return their ids.

    Due (selectors.mlaccount_due_q) by `now` + `lookahead_seconds`, and not held by a
    running sync, or held longer than the lease (its worker died). Least recently synced
    first (never synced before all), then the longest overdue, so that with a `limit` (the
    rate budget) nobody starves.

    The picked accounts' next_sync moves to now + lease: the next dispatch does not pick
    them again while their sync waits in the queue, and the sync, when it ends, sets the
    real next_sync. Should the queued sync be lost (a worker killed, an expired message),
    the account is simply due again when the lease runs out. Two dispatchers running at
    once pick disjoint accounts: SKIP LOCKED on PostgreSQL; SQLite serialises writers.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    due = (
        MLAccount.objects.select_for_update(skip_locked=True)
        .filter(selectors.mlaccount_due_q(now=now + timedelta(seconds=lookahead_seconds)))
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale))
        .order_by(F("last_sync").asc(nulls_first=True), "next_sync", "id")
        .values_list("id", flat=True)
    )
    if limit is not None:
        due = due[: max(0, limit)]
    ids = list(due)
    if ids:
        MLAccount.objects.filter(id__in=ids).update(next_sync=now + timedelta(seconds=lease_seconds))
    return [str(account_id) for account_id in ids]


INTERRUPTED_MESSAGE = "The sync was interrupted (its worker stopped); retrying."


@transaction.atomic
def mlaccount_release_stale_claims(*, lease_seconds: int, now: datetime | None = None) -> int:
    """Free sync claims older than the lease (their worker died mid-sync); return how many.

    A sync ends by its deadline, before its lease runs out (settings.SYNC_LEASE_SECONDS),
    so a claim past it was abandoned. Each freed account records that the sync was
    interrupted (an `interrupted` event, the last sync `failed` with that message) instead
    of showing a sync that never ends, and, when it is scheduled, becomes due now so the
    dispatch that freed it sends it again at once. The error streak is not touched.
    """
    now = now or timezone.now()
    stale = Q(sync_started_at__lt=now - timedelta(seconds=lease_seconds))
    ids = list(
        MLAccount.objects.select_for_update(skip_locked=True).filter(stale).values_list("id", flat=True)
    )
    if not ids:
        return 0
    freed = MLAccount.objects.filter(stale, id__in=ids).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
        last_sync_error=INTERRUPTED_MESSAGE,
        next_sync=Case(When(sync_enabled=True, then=Value(now)), default=F("next_sync")),
        updated_at=now,
    )
    for account_id in ids:
        event_record(account_id=account_id, kind=EventKind.INTERRUPTED, message=INTERRUPTED_MESSAGE)
    return freed
