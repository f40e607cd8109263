"""Alerts: the rules, firing once per change of state, and the inbox.

Each rule watches a condition per subject (an account, a question, a claim, a reputation
rate) and keeps what it last saw in `AlertState`. An alert fires when a condition turns on,
never while it stays on, so the next sync or sweep that finds the same thing fires nothing:
- `reconnect`: the account is `expired` (its grant is dead);
- `failing`: its syncs have failed, with no success, for the workspace's
  `failing_alert_hours` (an `error` or `active` account);
- `recovered`: one of those two turned off because the account works again (synced, or
  reconnected), not because someone paused it;
- `question_overdue`: unanswered questions older than the workspace's response target,
  grouped per account in one alert (each question counts once);
- `new_claim`: claims opened at ML after the account was connected here, grouped per account;
- `reputation`: the colour dropped since the previous day's snapshot, or a rate came within
  the workspace's margin of its limit (each rate once until it leaves the margin).

Who hears of it (`alert_fire`): every member of the account's workspace who can see the
account (their scope), by the channel they chose for the kind (`AlertSubscription`, else
their role's default), unless the workspace switched the kind off (`Workspace.alerts_off`)
or the account's `notifications_enabled` is off; `email_notifications_enabled` off keeps
the inbox and drops the email. The emails are sent by accounts.services.alert_emails.

The rules run in the background: `alert_rules_evaluate` (the minute job) sweeps every
account with a few set-wide queries, `alert_account_check` right after a failed sync, and
`alert_reputation_check` when the day's reputation is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import reputation
from accounts.expressions import seconds_after
from accounts.models import (
    MAX_FAILING_ALERT_HOURS,
    AccountStatus,
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertState,
    AlertSubscription,
    AuditAction,
    Claim,
    DeliveryEmail,
    Membership,
    MLAccount,
    Question,
    QuestionStatus,
    ReputationSnapshot,
    SyncStatus,
    User,
    Workspace,
    default_channel,
)
from accounts.services.audit import audit_record

# Claims and questions further back than this are history, not news (an account connected
# long ago and switched on again, a sweep that could not run for days).
NEWS_WINDOW_DAYS = 7
# At most this many subjects a sweep turns on per rule; the rest wait for the next sweep.
SWEEP_BATCH = 2000
# The ids an alert lists (its count says how many there were in all).
LISTED_IDS = 10
# Fired alerts and their inbox entries are kept this long.
ALERT_RETENTION_DAYS = 90


# --- states ------------------------------------------------------------------------------------


def _turn_on(*, account_id, kind: str, subject: str = "", now: datetime) -> bool:
    """Mark the condition on; True only if it was off (or never seen): the change that fires."""
    if AlertState.objects.filter(account_id=account_id, kind=kind, subject=subject, active=False).update(
        active=True, changed_at=now
    ):
        return True
    try:
        with transaction.atomic():
            AlertState.objects.create(account_id=account_id, kind=kind, subject=subject, changed_at=now)
    except IntegrityError:  # on already (or another sweep turned it on just now)
        return False
    return True


def _turn_off(*, account_id, kind: str, subject: str = "", now: datetime) -> bool:
    """Mark the condition off; True only if it was on."""
    return bool(
        AlertState.objects.filter(account_id=account_id, kind=kind, subject=subject, active=True).update(
            active=False, changed_at=now
        )
    )


# --- firing ------------------------------------------------------------------------------------


def _email_state(channel: str, email_on: bool) -> str:
    if not email_on:
        return DeliveryEmail.NONE
    if channel == AlertChannel.INSTANT:
        return DeliveryEmail.PENDING
    if channel == AlertChannel.DIGEST:
        return DeliveryEmail.DIGEST
    return DeliveryEmail.NONE


def _recipients(account: MLAccount, kind: str) -> list[tuple[int, str]]:
    """(user id, channel) of every active member who sees `account` and did not switch `kind` off."""
    chosen = AlertSubscription.objects.filter(membership=OuterRef("pk"), kind=kind).values("channel")[:1]
    rows = (
        Membership.objects.filter(workspace_id=account.workspace_id, user__is_active=True)
        .filter(Q(scoped=False) | Q(scope__account_id=account.pk))
        .annotate(channel=Subquery(chosen))
        .values_list("user_id", "role", "channel")
        .distinct()
    )
    found = []
    for user_id, role, channel in rows:
        channel = channel or default_channel(role)
        if channel != AlertChannel.OFF:
            found.append((user_id, channel))
    return found


@transaction.atomic
def alert_fire(*, account: MLAccount, kind: str, params: dict, now: datetime | None = None) -> Alert | None:
    """Record an alert about `account` and hand it to each member who should hear of it.

    None when nobody should: the account's alerts or the kind are switched off. An alert
    with no subscriber is still kept (the workspace's history of what happened).
    """
    now = now or timezone.now()
    workspace = account.workspace
    if not account.notifications_enabled or kind in (workspace.alerts_off or []):
        return None
    alert = Alert.objects.create(
        workspace=workspace,
        account=account,
        account_label=account.account_name or account.nickname,
        kind=kind,
        params=params,
        created_at=now,
    )
    recipients = _recipients(account, kind)
    AlertDelivery.objects.bulk_create(
        AlertDelivery(
            alert=alert,
            user_id=user_id,
            created_at=now,
            email=_email_state(channel, account.email_notifications_enabled),
        )
        for user_id, channel in recipients
    )
    if recipients:
        User.objects.filter(pk__in=[user_id for user_id, _channel in recipients]).update(
            unread_alerts=F("unread_alerts") + 1
        )
    return alert


# --- the account's own state: reconnect, failing, recovered ------------------------------------


def _failing_since(account: MLAccount) -> datetime:
    return account.last_sync or account.created_at


def _failing_q(now: datetime) -> Q:
    """Accounts whose syncs have failed, with no success since, for their workspace's hours."""
    return Q(status__in=[AccountStatus.ACTIVE, AccountStatus.ERROR], last_sync_status=SyncStatus.FAILED) & Q(
        failing_deadline__lte=now
    )


def _with_failing_deadline(queryset, now: datetime):
    return queryset.annotate(
        failing_deadline=seconds_after(
            Coalesce(F("last_sync"), F("created_at")), F("workspace__failing_alert_hours") * 3600
        )
    )


def _account_params(account: MLAccount, kind: str, now: datetime) -> dict:
    if kind == AlertKind.FAILING:
        hours = max(1, int((now - _failing_since(account)).total_seconds() // 3600))
        return {"hours": hours, "error": account.last_sync_error[:300]}
    if kind == AlertKind.RECONNECT:
        return {"nickname": account.nickname, "error": account.last_sync_error[:300]}
    return {}


def _account_on(account: MLAccount, kind: str, now: datetime) -> Alert | None:
    if _turn_on(account_id=account.pk, kind=kind, now=now):
        return alert_fire(account=account, kind=kind, params=_account_params(account, kind, now), now=now)
    return None


def _account_off(account: MLAccount, kind: str, now: datetime) -> Alert | None:
    """Turn `kind` off; fire `recovered` when it was on and the account syncs again."""
    if not _turn_off(account_id=account.pk, kind=kind, now=now):
        return None
    # Working again: active with no failure since (a success, or a reconnect that cleared the
    # streak); paused or stopped for another reason is no recovery.
    healthy = account.status == AccountStatus.ACTIVE and account.error_count == 0
    if healthy:
        return alert_fire(account=account, kind=AlertKind.RECOVERED, params={"was": kind}, now=now)
    return None


def _account_accounts(queryset):
    return queryset.select_related("workspace").defer(*MLAccount.SECRET_FIELDS)


def alert_account_check(*, account_id, now: datetime | None = None) -> list[Alert]:
    """Run the account-state rules (reconnect, failing, recovered) for one account now."""
    now = now or timezone.now()
    account = _account_accounts(_with_failing_deadline(MLAccount.objects.filter(pk=account_id), now)).first()
    if account is None:
        return []
    expired = account.status == AccountStatus.EXPIRED
    failing = (
        account.status in (AccountStatus.ACTIVE, AccountStatus.ERROR)
        and account.last_sync_status == SyncStatus.FAILED
        and account.failing_deadline <= now
    )
    fired = []
    for kind, on in ((AlertKind.RECONNECT, expired), (AlertKind.FAILING, failing)):
        alert = _account_on(account, kind, now) if on else _account_off(account, kind, now)
        if alert is not None:
            fired.append(alert)
    return fired


def _sweep_accounts(now: datetime) -> list[Alert]:
    fired = []
    on_states = AlertState.objects.filter(account=OuterRef("pk"), subject="", active=True)
    # Conditions that turned on: expired accounts, failing ones, not yet marked on.
    expired = MLAccount.objects.filter(status=AccountStatus.EXPIRED).exclude(
        Exists(on_states.filter(kind=AlertKind.RECONNECT))
    )
    failing = (
        _with_failing_deadline(MLAccount.objects.all(), now)
        .filter(_failing_q(now))
        .exclude(Exists(on_states.filter(kind=AlertKind.FAILING)))
    )
    for kind, queryset in ((AlertKind.RECONNECT, expired), (AlertKind.FAILING, failing)):
        for account in _account_accounts(queryset)[:SWEEP_BATCH]:
            with transaction.atomic():
                if (alert := _account_on(account, kind, now)) is not None:
                    fired.append(alert)
    # Conditions that turned off: states on whose account no longer meets them.
    stale = {
        AlertKind.RECONNECT: ~Q(status=AccountStatus.EXPIRED),
        AlertKind.FAILING: ~_failing_q(now),
    }
    for kind, gone in stale.items():
        accounts = (
            _with_failing_deadline(MLAccount.objects.all(), now)
            .filter(Exists(on_states.filter(kind=kind)))
            .filter(gone)
        )
        for account in _account_accounts(accounts)[:SWEEP_BATCH]:
            with transaction.atomic():
                if (alert := _account_off(account, kind, now)) is not None:
                    fired.append(alert)
    return fired


# --- questions and claims ----------------------------------------------------------------------


def _not_alerted(kind: str):
    return ~Exists(
        AlertState.objects.filter(
            account=OuterRef("account"), kind=kind, subject=Cast(OuterRef("pk"), output_field=CharField())
        )
    )


def _turn_on_many(*, account_id, kind: str, subjects: list[str], now: datetime) -> list[str]:
    """Turn on many subjects of one account and kind in three statements; return those that
    changed (were off, or new): the ones that fire.

    Each changed row is stamped with this run's `now`, so the rows stamped `now` afterwards are
    exactly what this run turned on (an already-on row keeps its older stamp; a concurrent run
    has another `now`).
    """
    states = AlertState.objects.filter(account_id=account_id, kind=kind, subject__in=subjects)
    states.filter(active=False).update(active=True, changed_at=now)
    AlertState.objects.bulk_create(
        [AlertState(account_id=account_id, kind=kind, subject=s, changed_at=now) for s in subjects],
        ignore_conflicts=True,
    )
    return list(states.filter(active=True, changed_at=now).values_list("subject", flat=True))


def _fire_grouped(kind: str, found: dict, now: datetime, params_of) -> list[Alert]:
    """Turn on each subject of `found` ({account id: [ids]}); one alert per account for those
    that turned on now."""
    fired = []
    accounts = _account_accounts(MLAccount.objects.filter(pk__in=found)).in_bulk()
    for account_id, ids in found.items():
        account = accounts.get(account_id)
        if account is None:
            continue
        with transaction.atomic():
            subjects = _turn_on_many(
                account_id=account_id, kind=kind, subjects=[str(i) for i in ids], now=now
            )
            if not subjects:
                continue
            new = sorted(int(subject) for subject in subjects)
            alert = alert_fire(account=account, kind=kind, params=params_of(account, new), now=now)
            if alert is not None:
                fired.append(alert)
    return fired


def _group(rows) -> dict:
    found: dict = {}
    for account_id, subject in rows:
        found.setdefault(account_id, []).append(subject)
    return found


def _sweep_questions(now: datetime) -> list[Alert]:
    overdue = (
        Question.objects.filter(
            status=QuestionStatus.UNANSWERED,
            date_created__gte=now - timedelta(days=NEWS_WINDOW_DAYS),
            account__status__in=[AccountStatus.ACTIVE, AccountStatus.ERROR],
        )
        .annotate(due=seconds_after(F("date_created"), F("account__workspace__response_target_minutes") * 60))
        .filter(due__lte=now)
        .filter(_not_alerted(AlertKind.QUESTION_OVERDUE))
        .order_by("date_created")
        .values_list("account_id", "id")[:SWEEP_BATCH]
    )

    def params(account, ids):
        return {
            "count": len(ids),
            "ids": sorted(ids)[:LISTED_IDS],
            "target_minutes": account.workspace.response_target_minutes,
        }

    return _fire_grouped(AlertKind.QUESTION_OVERDUE, _group(overdue), now, params)


def _sweep_claims(now: datetime) -> list[Alert]:
    # A claim is news when it was opened after the account was connected here: the claims
    # already open at the first sync are the desk's backlog, not something that just happened.
    new = (
        Claim.objects.filter(status="opened", date_created__gte=now - timedelta(days=NEWS_WINDOW_DAYS))
        .filter(date_created__gte=F("account__created_at"))
        .filter(_not_alerted(AlertKind.NEW_CLAIM))
        .order_by("date_created")
        .values_list("account_id", "id")[:SWEEP_BATCH]
    )

    def params(account, ids):
        return {"count": len(ids), "ids": sorted(ids)[:LISTED_IDS]}

    return _fire_grouped(AlertKind.NEW_CLAIM, _group(new), now, params)


# --- reputation --------------------------------------------------------------------------------


def _level_rank(level_id: str) -> int:
    """5 for green … 1 for red, 0 for no colour (a new seller: no drop from or to it)."""
    head = (level_id or "").split("_", 1)[0]
    return int(head) if head.isdigit() else 0


@transaction.atomic
def alert_reputation_check(
    *, account_id, snapshot: ReputationSnapshot | None = None, now: datetime | None = None
) -> Alert | None:
    """Compare the account's newest reputation (`snapshot`, just stored) with the day before;
    fire on a colour drop or a rate entering its warning margin (one alert for all of it).

    One read when nothing changed (it runs in the day's first sync of every account); the
    writes come only with a change.
    """
    now = now or timezone.now()
    if snapshot is None:
        snapshot = ReputationSnapshot.objects.filter(account_id=account_id).order_by("-day").first()
        if snapshot is None:
            return None
    # One read: the margin, the level of the day before and which rates are flagged already.
    flagged = AlertState.objects.filter(account_id=account_id, kind=AlertKind.REPUTATION, active=True)
    facts = (
        Workspace.objects.filter(ml_accounts=account_id)
        .annotate(
            previous=Subquery(
                ReputationSnapshot.objects.filter(account_id=account_id, day__lt=snapshot.day)
                .order_by("-day")
                .values("level_id")[:1]
            ),
            **{
                f"on_{metric}": Exists(flagged.filter(subject=f"rate:{metric}"))
                for metric in reputation.METRICS
            },
        )
        .values("reputation_margin_percent", "previous", *(f"on_{metric}" for metric in reputation.METRICS))
        .first()
    )
    if facts is None:  # the account was removed meanwhile
        return None
    previous_level = facts["previous"] or ""
    on = {f"rate:{metric}" for metric in reputation.METRICS if facts[f"on_{metric}"]}
    params: dict = {}
    was, rank = _level_rank(previous_level), _level_rank(snapshot.level_id)
    drop = f"drop:{snapshot.day.isoformat()}"
    if (
        was
        and rank
        and rank < was
        and _turn_on(account_id=account_id, kind=AlertKind.REPUTATION, subject=drop, now=now)
    ):
        params["drop"] = [previous_level, snapshot.level_id]
    margin = facts["reputation_margin_percent"]
    near = {w.metric: w for w in reputation.warnings(snapshot, margin_percent=margin)}
    rates = []
    for metric in reputation.METRICS:
        subject = f"rate:{metric}"
        if metric in near and subject not in on:
            if _turn_on(account_id=account_id, kind=AlertKind.REPUTATION, subject=subject, now=now):
                warning = near[metric]
                rates.append(
                    {
                        "metric": metric,
                        "rate": str(warning.rate),
                        "limit": str(warning.limit),
                        "over": warning.over,
                    }
                )
        elif metric not in near and subject in on:
            _turn_off(account_id=account_id, kind=AlertKind.REPUTATION, subject=subject, now=now)
    if rates:
        params["rates"] = rates
    if not params:
        return None
    params["level"] = snapshot.level_id
    account = _account_accounts(MLAccount.objects.filter(pk=account_id)).first()
    return alert_fire(account=account, kind=AlertKind.REPUTATION, params=params, now=now)


# --- the sweep and the housekeeping --------------------------------------------------------------


def alert_rules_evaluate(*, now: datetime | None = None) -> int:
    """Run every set-wide rule once (the minute job): accounts, questions, claims; return how
    many alerts fired."""
    now = now or timezone.now()
    fired = _sweep_accounts(now) + _sweep_questions(now) + _sweep_claims(now)
    return len(fired)


def alert_cleanup(*, now: datetime | None = None) -> int:
    """Drop alerts (with their inbox entries) older than ALERT_RETENTION_DAYS, and the states
    of questions and claims that changed that long ago; return how many alerts."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=ALERT_RETENTION_DAYS)
    AlertState.objects.filter(
        kind__in=[AlertKind.QUESTION_OVERDUE, AlertKind.NEW_CLAIM], changed_at__lt=cutoff
    ).delete()
    AlertState.objects.filter(
        kind=AlertKind.REPUTATION, subject__startswith="drop:", changed_at__lt=cutoff
    ).delete()
    stale_unread = (
        AlertDelivery.objects.filter(alert__created_at__lt=cutoff, read_at__isnull=True)
        .values_list("user_id", flat=True)
        .distinct()
    )
    users = list(stale_unread)
    deleted = Alert.objects.filter(created_at__lt=cutoff).delete()[1].get(Alert._meta.label, 0)
    for user_id in users:
        _recount_unread(user_id)
    return deleted


# --- the inbox ---------------------------------------------------------------------------------


def _recount_unread(user_id) -> int:
    unread = AlertDelivery.objects.filter(user_id=user_id, read_at__isnull=True).count()
    User.objects.filter(pk=user_id).update(unread_alerts=unread)
    return unread


@transaction.atomic
def alert_mark_read(*, user: User, delivery_ids=None, now: datetime | None = None) -> int:
    """Mark the user's inbox entries read (`delivery_ids`, or all); return the unread left."""
    now = now or timezone.now()
    entries = AlertDelivery.objects.filter(user=user, read_at__isnull=True)
    if delivery_ids is not None:
        entries = entries.filter(pk__in=list(delivery_ids))
    entries.update(read_at=now)
    unread = _recount_unread(user.pk)
    user.unread_alerts = unread
    return unread


# --- settings: the workspace's rules, each member's channels -----------------------------------


class AlertSettingsError(ValueError):
    """Invalid alert settings; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid alert settings")
        self.errors = errors


@transaction.atomic
def workspace_set_alert_rules(*, workspace: Workspace, enabled, failing_hours) -> Workspace:
    """Switch the workspace's alert kinds (`enabled`: the kinds on) and set the failing hours."""
    errors: dict[str, list[str]] = {}
    kinds = set(enabled or [])
    if not kinds <= set(AlertKind.values):
        errors["enabled"] = [_("Choose alerts from the list.")]
    try:
        hours = int(failing_hours)
        if not 1 <= hours <= MAX_FAILING_ALERT_HOURS:
            raise ValueError
    except (TypeError, ValueError):
        errors["failing_hours"] = [
            _("Enter a whole number of hours from 1 to %(max)s.") % {"max": MAX_FAILING_ALERT_HOURS}
        ]
    if errors:
        raise AlertSettingsError(errors)
    off = sorted(set(AlertKind.values) - kinds)
    changes = {}
    if off != sorted(workspace.alerts_off or []):
        changes["alerts_off"] = [sorted(workspace.alerts_off or []), off]
    if hours != workspace.failing_alert_hours:
        changes["failing_alert_hours"] = [workspace.failing_alert_hours, hours]
    if changes:
        Workspace.objects.filter(pk=workspace.pk).update(alerts_off=off, failing_alert_hours=hours)
        workspace.alerts_off, workspace.failing_alert_hours = off, hours
        audit_record(action=AuditAction.SETTINGS, workspace=workspace, changes=changes)
    return workspace


@transaction.atomic
def membership_set_alert_channels(*, membership: Membership, channels: dict) -> dict[str, str]:
    """Set a member's channel per kind (`{kind: channel}`); the role's default is stored as no row."""
    errors = {}
    for kind, channel in channels.items():
        if kind not in AlertKind.values or channel not in AlertChannel.values:
            errors[str(kind)] = [_("Choose how to receive this alert from the list.")]
    if errors:
        raise AlertSettingsError(errors)
    default = default_channel(membership.role)
    for kind, channel in channels.items():
        if channel == default:
            AlertSubscription.objects.filter(membership=membership, kind=kind).delete()
        else:
            AlertSubscription.objects.update_or_create(
                membership=membership, kind=kind, defaults={"channel": channel}
            )
    chosen = dict(AlertSubscription.objects.filter(membership=membership).values_list("kind", "channel"))
    return {kind: chosen.get(kind, default) for kind in AlertKind.values}
