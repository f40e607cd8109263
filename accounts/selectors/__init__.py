"""Reads. Every lookup of a user's Mercado Livre accounts and workspaces goes through here.

The access helper is `mlaccount_get_for_user` (and `workspace_get_for_user`): a user reaches
an account through a membership of its workspace, limited to chosen accounts when the
membership is scoped, and acts on it as far as the membership's role allows
(accounts.roles). An account the user cannot see, an id that does not exist and a malformed
one are indistinguishable (AccountNotFound, a 404), so ids cannot be probed; an account the
user can see but whose role does not allow the action is Forbidden (a 403). Membership is
read on every call, so removing a member or narrowing a role takes effect on the very next
request, for sessions and bearer tokens alike.
"""

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from accounts.errors import (
    AccountNotFound,
    Forbidden,
    InvitationNotFound,
    MemberNotFound,
    SyncJobNotFound,
    WorkspaceNotFound,
)
from accounts.models import (
    COUNT_BITS,
    SUBSCRIBED_TOPICS,
    TOPIC_COUNTS,
    AccountEvent,
    Invitation,
    Membership,
    MembershipAccount,
    MLAccount,
    Notification,
    NotificationStatus,
    Role,
    SyncJob,
    SyncJobItem,
    Workspace,
)
from accounts.roles import Can, abilities, allows


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def mlaccount_visible_to(*, user) -> QuerySet[MLAccount]:
    """Every account `user` can see, with `role` (theirs in its workspace) annotated.

    Visible: the user is a member of the account's workspace, unscoped, or scoped with this
    account among theirs. Subqueries, not joins, so a list stays one query however many
    accounts and members there are.
    """
    if not _signed_in(user):
        return MLAccount.objects.none()
    memberships = Membership.objects.filter(user=user, workspace=OuterRef("workspace_id"))
    in_scope = MembershipAccount.objects.filter(
        membership__user=user, membership__workspace=OuterRef("workspace_id"), account=OuterRef("pk")
    )
    return MLAccount.objects.filter(Exists(memberships.filter(scoped=False)) | Exists(in_scope)).annotate(
        role=Subquery(memberships.values("role")[:1])
    )


def mlaccount_list_for_user(*, user, workspace=None) -> QuerySet[MLAccount]:
    """The accounts `user` can see (in `workspace` only, when given), primary first then
    oldest first, without the token columns; each with its `role` annotated."""
    queryset = mlaccount_visible_to(user=user)
    if workspace is not None:
        queryset = queryset.filter(workspace=workspace)
    return queryset.defer(*MLAccount.SECRET_FIELDS).order_by("-is_primary", "created_at", "id")


def mlaccount_get_for_user(*, user, account_id, need: Can = Can.VIEW, with_tokens: bool = False) -> MLAccount:
    """The access helper: one account `user` can see, if their role allows `need`.

    AccountNotFound (404) for malformed, missing or invisible ids; Forbidden (403) when the
    user sees the account but may not do `need` to it. The account carries `role` and `can`
    (the set of actions the role allows, for templates).
    """
    pk = _uuid(account_id)
    if pk is None or not _signed_in(user):
        raise AccountNotFound()
    queryset = mlaccount_visible_to(user=user).select_related("workspace")
    if not with_tokens:
        queryset = queryset.defer(*MLAccount.SECRET_FIELDS)
    try:
        account = queryset.get(pk=pk)
    except MLAccount.DoesNotExist:
        raise AccountNotFound() from None
    if not allows(account.role, need):
        raise Forbidden()
    account.can = abilities(account.role)
    return account


# --- workspaces ---------------------------------------------------------------------------------


def workspace_list_for_user(*, user) -> QuerySet[Workspace]:
    """The workspaces `user` is a member of, personal first then by name, with `role`."""
    if not _signed_in(user):
        return Workspace.objects.none()
    role = Membership.objects.filter(user=user, workspace=OuterRef("pk")).values("role")[:1]
    return (
        Workspace.objects.filter(memberships__user=user)
        .annotate(role=Subquery(role))
        .order_by(
            Case(When(personal_for=user, then=Value(0)), default=Value(1), output_field=IntegerField()),
            "name",
            "created_at",
        )
    )


def workspace_get_for_user(*, user, workspace_id, need: Can = Can.VIEW) -> Workspace:
    """The access helper for a workspace: WorkspaceNotFound (404) unless `user` is a member,
    Forbidden (403) when their role does not allow `need`. Carries `role` and `can`."""
    pk = _uuid(workspace_id)
    if pk is None or not _signed_in(user):
        raise WorkspaceNotFound()
    membership = Membership.objects.select_related("workspace").filter(user=user, workspace_id=pk).first()
    if membership is None:
        raise WorkspaceNotFound()
    if not allows(membership.role, need):
        raise Forbidden()
    workspace = membership.workspace
    workspace.role = membership.role
    workspace.can = abilities(membership.role)
    workspace.membership = membership
    return workspace


def workspace_member_list(*, workspace: Workspace) -> QuerySet[Membership]:
    """The workspace's members, oldest first, with their user (page it, then `with_scopes`)."""
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("created_at", "id")


def workspaces_only_owned_by(*, user) -> QuerySet[Workspace]:
    """The shared workspaces whose only owner is `user` (deleting the user would leave them
    with nobody to manage them: their members and accounts would be stranded)."""
    others = Membership.objects.filter(workspace=OuterRef("pk"), role=Role.OWNER).exclude(user=user)
    return (
        Workspace.objects.filter(memberships__user=user, memberships__role=Role.OWNER)
        .exclude(personal_for=user)
        .exclude(Exists(others))
        .order_by("name", "id")
    )


def workspace_owner_count(*, workspace: Workspace) -> int:
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).count()


def workspace_members(*, workspace: Workspace) -> list[Membership]:
    """The workspace's members, oldest first, each with `account_ids` (None: every account)."""
    return with_scopes(list(workspace_member_list(workspace=workspace)))


def with_scopes(memberships: list[Membership]) -> list[Membership]:
    """Give each of `memberships` its `account_ids` (None: every account), in one query."""
    scoped = [m.pk for m in memberships if m.scoped]
    ids: dict[int, list] = {pk: [] for pk in scoped}
    if scoped:
        rows = MembershipAccount.objects.filter(membership_id__in=scoped).order_by("account_id")
        for membership_id, account_id in rows.values_list("membership_id", "account_id"):
            ids[membership_id].append(account_id)
    for membership in memberships:
        membership.account_ids = ids[membership.pk] if membership.scoped else None
    return memberships


def workspace_member_get(*, workspace: Workspace, user_id) -> Membership:
    """One member of the workspace by user id; MemberNotFound (404) otherwise."""
    try:
        user_pk = int(str(user_id))
    except (TypeError, ValueError):
        raise MemberNotFound() from None
    if not 0 < user_pk < 2**63:  # beyond the column's range: no such member, not an overflow
        raise MemberNotFound()
    membership = (
        Membership.objects.select_related("user").filter(workspace=workspace, user_id=user_pk).first()
    )
    if membership is None:
        raise MemberNotFound()
    return membership


def workspace_account_count(*, workspace: Workspace) -> int:
    return MLAccount.objects.filter(workspace=workspace).count()


def workspace_accounts_for_scope(*, workspace: Workspace) -> QuerySet[MLAccount]:
    """The workspace's accounts, for choosing a member's scope."""
    return (
        MLAccount.objects.filter(workspace=workspace)
        .defer(*MLAccount.SECRET_FIELDS)
        .order_by("account_name", "created_at")
    )


def invitation_pending(*, workspace: Workspace, now: datetime) -> QuerySet[Invitation]:
    """The workspace's invitations that can still be accepted, newest first."""
    return Invitation.objects.filter(
        workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).order_by("-created_at", "id")


def invitation_get(*, workspace: Workspace, invitation_id) -> Invitation:
    pk = _uuid(invitation_id)
    invitation = Invitation.objects.filter(workspace=workspace, pk=pk).first() if pk else None
    if invitation is None:
        raise InvitationNotFound()
    return invitation


def mlaccount_events(*, account: MLAccount) -> QuerySet[AccountEvent]:
    """The account's error history, newest first."""
    return AccountEvent.objects.filter(account=account).order_by("-created_at", "-id")


def mlaccount_due_q(*, now: datetime) -> Q:
    """Accounts the scheduler should sync: active or error, sync enabled, next sync reached."""
    return Q(
        sync_enabled=True,
        status__in=[MLAccount.Status.ACTIVE, MLAccount.Status.ERROR],
        next_sync__lte=now,
    )


def mlaccount_ids_expiring(*, before: datetime) -> list:
    """Ids of accounts (not expired, not paused) whose access token expires before `before`."""
    return list(
        MLAccount.objects.filter(token_expires_at__lt=before)
        .exclude(status__in=[MLAccount.Status.EXPIRED, MLAccount.Status.PAUSED])
        .exclude(refresh_token__isnull=True)
        .order_by("token_expires_at")
        .values_list("id", flat=True)
    )


def mlaccount_list_for_overview(*, user, workspace=None) -> QuerySet[MLAccount]:
    """The accounts the dashboard lists (those of `workspace` that `user` can see), with
    `last_event_kind` and `role` annotated.

    `last_event_kind` is the kind of the account's newest history entry (None without one),
    so the dashboard can say in words what went wrong with a failed sync. A subquery keeps
    the page at one query however many accounts there are.
    """
    newest = (
        AccountEvent.objects.filter(account=OuterRef("pk")).order_by("-created_at", "-id").values("kind")[:1]
    )
    return mlaccount_list_for_user(user=user, workspace=workspace).annotate(last_event_kind=Subquery(newest))


# The overview's sort keys (the dashboard's `?sort=`, "-" in front for descending). Counts
# not known yet sort last either way. "problems", the default, puts what needs the seller
# first: reconnect needed, then error, then a token about to die, then a failing sync,
# then the healthy accounts, then the paused ones.
OVERVIEW_SORTS = {
    "problems": "attention",
    "name": "account_name",
    "status": "status",
    "site": "site_id",
    "products": "cached_products",
    "orders": "cached_orders",
    "questions": "cached_questions",
    "claims": "cached_claims",
    "token": "token_expires_at",
    "last_sync": "last_sync",
    "next_sync": "next_sync",
}
OVERVIEW_STATUSES = ("active", "paused", "error", "expired")
OVERVIEW_HAS = ("questions", "claims")


def mlaccount_overview(
    *,
    user,
    workspace,
    now: datetime,
    token_margin,
    statuses=(),
    sites=(),
    has=(),
    search: str = "",
    sort: str = "problems",
) -> QuerySet[MLAccount]:
    """The overview's accounts of `workspace` that `user` can see, filtered and sorted.

    `statuses`, `sites`: any of them (none: all). `has`: "questions" and/or "claims", the
    accounts with some unanswered or open. `search`: a piece of the name or the nickname, or
    the ML user id. `sort`: a key of OVERVIEW_SORTS, "-" in front for descending; ties
    (and "problems") fall back to the name. Each account carries `attention` (0 reconnect,
    1 error, 2 token about to die: expiring within `token_margin` of `now`, 3 last sync
    failed, 4 fine, 5 paused) and `last_event_kind`; no token columns.
    """
    queryset = mlaccount_list_for_overview(user=user, workspace=workspace)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if sites:
        queryset = queryset.filter(site_id__in=sites)
    if "questions" in has:
        queryset = queryset.filter(cached_questions__gt=0)
    if "claims" in has:
        queryset = queryset.filter(cached_claims__gt=0)
    search = search.strip()
    if search:
        match = Q(account_name__icontains=search) | Q(nickname__icontains=search.removeprefix("@"))
        if search.isascii() and search.isdigit() and len(search) <= 18:
            match |= Q(ml_user_id=int(search))
        queryset = queryset.filter(match)
    queryset = queryset.annotate(
        attention=Case(
            When(status=MLAccount.Status.EXPIRED, then=Value(0)),
            When(status=MLAccount.Status.ERROR, then=Value(1)),
            When(status=MLAccount.Status.PAUSED, then=Value(5)),
            When(token_expires_at__lte=now + token_margin, then=Value(2)),
            When(last_sync_status="failed", then=Value(3)),
            default=Value(4),
            output_field=IntegerField(),
        )
    )
    column = OVERVIEW_SORTS.get(sort.removeprefix("-"), "attention")
    if column == "attention":
        return queryset.order_by("attention", "-is_primary", "account_name", "id")
    key = F(column).desc(nulls_last=True) if sort.startswith("-") else F(column).asc(nulls_last=True)
    return queryset.order_by(key, "account_name", "id")


def mlaccount_overview_totals(*, user, workspace) -> dict:
    """The overview's totals over every account of `workspace` that `user` can see, in one
    query: how many in each status, and the four counts summed over the synced ones (None
    while none has been synced)."""
    queryset = mlaccount_list_for_user(user=user, workspace=workspace).order_by()
    synced = Q(cached_at__isnull=False)
    totals = queryset.aggregate(
        accounts=Count("pk"),
        synced=Count("pk", filter=synced),
        **{status: Count("pk", filter=Q(status=status)) for status in OVERVIEW_STATUSES},
        products=Sum("cached_products", filter=synced),
        orders=Sum("cached_orders", filter=synced),
        questions=Sum("cached_questions", filter=synced),
        claims=Sum("cached_claims", filter=synced),
    )
    for field in ("products", "orders", "questions", "claims"):
        if totals["synced"]:
            totals[field] = totals[field] or 0
        else:
            totals[field] = None
    return totals


def sync_job_get_for_user(*, user, job_id) -> SyncJob:
    """One of the user's sync jobs by id; SyncJobNotFound for malformed, missing or foreign ids."""
    try:
        pk = uuid.UUID(str(job_id))
    except (TypeError, ValueError, AttributeError):
        raise SyncJobNotFound() from None
    if user is None or not getattr(user, "is_authenticated", False):
        raise SyncJobNotFound()
    try:
        return SyncJob.objects.get(owner=user, pk=pk)
    except SyncJob.DoesNotExist:
        raise SyncJobNotFound() from None


def sync_job_items(*, job: SyncJob) -> list[SyncJobItem]:
    """The job's items in the order the accounts were listed."""
    return list(SyncJobItem.objects.filter(job=job).order_by("position"))


def sync_job_pending_count(*, job_id) -> int:
    """How many of the job's syncs have not ended yet."""
    return SyncJobItem.objects.filter(job_id=job_id, finished_at__isnull=True).count()


# --- the background jobs (system-wide reads, never shown to a user as is) ----------------------


def mlaccount_status_counts() -> dict[str, int]:
    """How many accounts are in each status, every status present (zero when none)."""
    counts = dict.fromkeys(MLAccount.Status.values, 0)
    for row in MLAccount.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def mlaccount_count_due(*, now: datetime) -> int:
    """How many accounts the scheduler considers due at `now` (claimed ones included)."""
    return MLAccount.objects.filter(mlaccount_due_q(now=now)).count()


def mlaccount_schedule_groups() -> list[dict]:
    """The scheduled fleet in groups: status, sync_interval, error_count and how many (`n`).

    Only accounts the scheduler syncs (active or error, sync enabled). Active accounts are
    grouped by interval alone (error_count 0); accounts in error by interval and error
    streak, which sets their back-off. A handful of rows whatever the fleet's size.
    """
    scheduled = MLAccount.objects.filter(
        sync_enabled=True, status__in=[MLAccount.Status.ACTIVE, MLAccount.Status.ERROR]
    ).order_by()
    # Active accounts whose ML notifications arrive are polled at the reconciliation
    # interval (services.mlaccount_record_sync_success): a group of their own.
    fed_since = timezone.now() - timedelta(seconds=settings.ML_NOTIFICATIONS_SILENT_AFTER)
    active = (
        scheduled.filter(status=MLAccount.Status.ACTIVE)
        .annotate(fed=Case(When(last_notification_at__gte=fed_since, then=Value(True)), default=Value(False)))
        .values("sync_interval", "fed")
        .annotate(n=Count("id"))
    )
    in_error = (
        scheduled.filter(status=MLAccount.Status.ERROR)
        .values("sync_interval", "error_count")
        .annotate(n=Count("id"))
    )
    groups = [
        {
            "status": MLAccount.Status.ACTIVE,
            "sync_interval": row["sync_interval"],
            "error_count": 0,
            "fed": bool(row["fed"]),
            "n": row["n"],
        }
        for row in active
    ]
    groups += [{"status": MLAccount.Status.ERROR, "fed": False, **row} for row in in_error]
    return groups


# --- Mercado Livre notifications --------------------------------------------------------------------

NOTIFICATION_HEALTH_PAGE = 50


@dataclass
class NotificationHealth:
    """How ML notifications are arriving for the accounts a user can see (`notification_health`)."""

    last_received_at: datetime | None
    received_last_hour: int
    processed_last_hour: int
    failed_last_hour: int
    lag_p95_seconds: float | None
    silent_topics: list[str]
    accounts: list[dict]
    total: int
    page: int
    configured: bool

    @property
    def warning(self) -> bool:
        """Polling keeps finding changes that no notification brought: check the DevCenter."""
        return bool(self.silent_topics)


def _lag_p95_seconds(processed: QuerySet[Notification], n: int) -> float | None:
    """The 95th percentile of `processed`'s lag, read by the database (nearest rank)."""
    if n == 0:
        return None
    rank = max(0, math.ceil(0.95 * n) - 1)
    lag = processed.order_by("lag_ms").values_list("lag_ms", flat=True)[rank : rank + 1]
    value = next(iter(lag), None)
    return None if value is None else round(value / 1000, 3)


def notification_silent_topics(*, accounts: QuerySet[MLAccount], notifications, since: datetime) -> list[str]:
    """Subscribed topics none of which arrived for `accounts` since `since`, although a
    scheduled poll found their count changed meanwhile (two queries).

    The sign that ML is not delivering them: the callback URL or the topics chosen in ML's
    DevCenter are wrong, or ML switched the topic off after failed deliveries (§6.4).
    """
    bits = {f"bit_{column}": F("poll_change_mask").bitand(bit) for column, bit in COUNT_BITS.items()}
    changed = (
        accounts.order_by()
        .annotate(**bits)
        .aggregate(
            **{
                column: Count("id", filter=Q(last_poll_change_at__gte=since, **{f"bit_{column}__gt": 0}))
                for column in COUNT_BITS
            }
        )
    )
    if not any(changed.values()):
        return []
    heard = {
        TOPIC_COUNTS.get(topic)
        # Delivered by ML: one recovered from its missed feeds says the delivery failed.
        for topic in notifications.filter(arrived_at__gte=since, source=Notification.Source.WEBHOOK)
        .order_by()
        .values_list("topic", flat=True)
        .distinct()
    }
    return [
        topic
        for topic in SUBSCRIBED_TOPICS
        if changed.get(TOPIC_COUNTS[topic]) and TOPIC_COUNTS[topic] not in heard
    ]


def notification_health(*, user, page: int = 1, now: datetime | None = None) -> NotificationHealth:
    """Notification health over the accounts `user` can see, in a fixed number of queries.

    The last hour's received, processed (`done` or `ignored`) and failed counts and the
    lag's 95th percentile (from ML's `received` to processed); the `silent_topics`: topics
    of which no notification arrived within ML_NOTIFICATIONS_SILENT_AFTER although a
    scheduled poll found their count changed meanwhile (the callback URL or the topics in
    ML's DevCenter are likely wrong); and each account's last notification, 50 a page.
    """
    now = now or timezone.now()
    hour_ago = now - timedelta(hours=1)
    since = now - timedelta(seconds=settings.ML_NOTIFICATIONS_SILENT_AFTER)
    visible = mlaccount_visible_to(user=user)
    notes = Notification.objects.filter(account__in=visible.values("pk")).order_by()
    done_last_hour = Q(status=NotificationStatus.DONE, processed_at__gte=hour_ago, lag_ms__isnull=False)
    stats = notes.aggregate(
        last=Max("arrived_at"),
        received=Count("id", filter=Q(arrived_at__gte=hour_ago)),
        processed=Count(
            "id",
            filter=Q(
                status__in=[NotificationStatus.DONE, NotificationStatus.IGNORED], processed_at__gte=hour_ago
            ),
        ),
        failed=Count("id", filter=Q(status=NotificationStatus.FAILED, processed_at__gte=hour_ago)),
        lagged=Count("id", filter=done_last_hour),
    )
    silent = notification_silent_topics(accounts=visible, notifications=notes, since=since)
    total = visible.count()
    pages = max(1, math.ceil(total / NOTIFICATION_HEALTH_PAGE))
    page = min(max(1, page), pages)
    start = (page - 1) * NOTIFICATION_HEALTH_PAGE
    accounts = list(
        visible.order_by("account_name", "created_at", "id").values(
            "id", "account_name", "nickname", "last_notification_at"
        )[start : start + NOTIFICATION_HEALTH_PAGE]
    )
    return NotificationHealth(
        last_received_at=stats["last"],
        received_last_hour=stats["received"],
        processed_last_hour=stats["processed"],
        failed_last_hour=stats["failed"],
        lag_p95_seconds=_lag_p95_seconds(notes.filter(done_last_hour), stats["lagged"]),
        silent_topics=silent,
        accounts=accounts,
        total=total,
        page=page,
        configured=bool(settings.ML_WEBHOOK_SECRET),
    )


def mlaccount_notification_summary(*, account: MLAccount, now: datetime | None = None) -> dict:
    """One account's notifications for its page, in one query: the last hour's received and
    failed, the average delay from ML to the numbers, whether it is polled as a
    reconciliation only, and whether polls found changes that no notification announced."""
    now = now or timezone.now()
    hour_ago = now - timedelta(hours=1)
    since = now - timedelta(seconds=settings.ML_NOTIFICATIONS_SILENT_AFTER)
    heard = account.last_notification_at is not None and account.last_notification_at >= since
    done_last_hour = Q(status=NotificationStatus.DONE, processed_at__gte=hour_ago)
    stats = (
        Notification.objects.filter(account=account)
        .order_by()
        .aggregate(
            received=Count("id", filter=Q(arrived_at__gte=hour_ago)),
            failed=Count("id", filter=Q(status=NotificationStatus.FAILED, processed_at__gte=hour_ago)),
            lag=Avg("lag_ms", filter=done_last_hour),
        )
    )
    return {
        "last_notification_at": account.last_notification_at,
        "received_last_hour": stats["received"],
        "failed_last_hour": stats["failed"],
        "lag_seconds": None if stats["lag"] is None else round(stats["lag"] / 1000, 1),
        "reconciling": heard,
        # Syncs found numbers changed that no notification announced, and none arrived.
        "silent": bool(settings.ML_WEBHOOK_SECRET)
        and not heard
        and account.last_poll_change_at is not None
        and account.last_poll_change_at >= since,
    }


# The desk's and the sales' reads live in their own modules; imported last, since they build
# on the access helper above.
from accounts.selectors.alerts import (  # noqa: E402, F401
    alert_channels,
    alert_emails_waiting,
    alert_inbox,
)
from accounts.selectors.audit import (  # noqa: E402, F401
    AUDIT_PAGE_SIZE,
    audit_entries_for_user,
    audit_entries_for_workspace,
    audit_latest_for_account,
)
from accounts.selectors.desk import (  # noqa: E402, F401
    AGE_FILTERS,
    claim_list_for_user,
    question_get_for_user,
    question_queue_for_user,
    saved_replies_for_workspaces,
    saved_reply_get_for_user,
    saved_reply_list,
)
from accounts.selectors.sales import (  # noqa: E402, F401
    WINDOW_DAYS,
    account_metrics,
    account_metrics_for_user,
    count_history,
    count_history_totals,
    reputation_history,
    reputation_latest,
    reputation_levels_by_day,
    sales_accounts_for_user,
    sales_by_account,
    sales_daily,
    sales_summary,
    sales_window,
)
