"""Mercado Livre notifications: intake, merge and process, and missed-feeds recovery.

ML pushes a notification for every change of a seller's resources (mercadolivre-api.md §6).
The body is only a pointer, unsigned, duplicated and out of order, so:

- **Intake** (`receive`, the webhook view): parse leniently (§6.2: `_id` or `id`, `user_id`
  a number or a string), drop another application's, store the rest raw in one INSERT and
  answer. No ML call, no lock wait: ML wants 200 within 500 ms (§6.4), and anything but 200
  counts as a failure that can get the topic switched off (§11.1), so a seller nobody
  connected is stored `ignored` and answered 200 too. Processing is queued per account after
  a short merge window (ML_NOTIFICATION_MERGE_SECONDS), so a burst costs one task.
- **Processing** (`process_account`, a Celery task): claim the account's pending
  notifications, merge them per count (five notifications of one order, or of five
  questions, are one count to re-read), and re-read each count from ML with the account's
  token (the shared budget, the single-flight refresh). The body is never trusted for a
  number. Each notification ends `done`, `ignored` or `failed` with its reason; a failure
  that may pass is retried with back-off.
- **Recovery** (`recover_missed_feeds`, every 15 minutes and `manage.py recover_notifications`):
  page through `/missed_feeds` (§6.5) per subscribed topic (`items` once per site) into the
  same intake, deduplicated by ML's id.

What is re-read: questions and claims refresh their mirrors (sync.mirrors: the newest page of
questions, which carries the count, plus each question the batch names; the open claims);
orders read each order the batch names into the orders mirror (a burst: the incremental
search), which then counts them; products, of which the app keeps only a count, re-read
that count (one call, however many resources of that topic the batch names).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from kombu.exceptions import OperationalError
from prometheus_client import Counter, Histogram

from accounts import services, tokens
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import deadline as ml_deadline
from accounts.mercadolivre import http as ml_http
from accounts.mercadolivre import resources
from accounts.mercadolivre.errors import (
    MLBadResponse,
    MLError,
    MLInvalidGrant,
    MLRateLimited,
    MLUnauthorized,
    MLUnavailable,
)
from accounts.models import SUBSCRIBED_TOPICS, AccountStatus, MLAccount, Notification, NotificationStatus
from accounts.services.notifications import _lag_ms as lag_ms
from sync import mirrors
from sync.engine import MIRROR_FIELDS

logger = logging.getLogger(__name__)

# Redis (cache, broker) or kombu's wrapper of a broker failure: the notification is stored
# already, so these only cost a count or a prompt processing (the minute job catches up).
UNAVAILABLE = (redis.RedisError, OperationalError)

MAX_BODY_BYTES = 16 * 1024  # a notification is a few hundred bytes (§6.2)
MAX_ID = 2**63 - 1
KICK_KEY = "notifications:kick:{}"
FOREIGN_KEY = "notifications:foreign"
CALLS_KEY = "notifications:calls:{}"  # ML calls made by processing, per minute
CALLS_WINDOW_MINUTES = 5
# One processing run re-reads at most four counts (plus a refresh); this bounds it well
# inside the task's time limit and a claim's lease.
PROCESS_DEADLINE_SECONDS = 120
# /missed_feeds pages one recovery run reads per topic and site at the most.
MAX_RECOVERY_PAGES = 25

COUNTERS = {
    "cached_products": resources.count_active_listings,
    "cached_orders": resources.count_recent_orders,
    "cached_questions": resources.count_unanswered_questions,
    "cached_claims": resources.count_open_claims,
}


# GET /metrics: what came in (by source, and stored / ignored / foreign / invalid), what
# processing made of it (done / ignored / failed for good / retry later), and how late.
RECEIVED = Counter("mlaccounts_notifications_received", "ML notifications received.", ["source", "outcome"])
PROCESSED = Counter("mlaccounts_notifications_processed", "ML notifications processed.", ["outcome"])
LAG = Histogram(
    "mlaccounts_notification_lag_seconds",
    "Seconds from ML's `received` (our arrival when ML's clock is ahead) to a notification done.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
for _source in Notification.Source.values:
    for _outcome in ("stored", "ignored", "foreign", "invalid"):
        RECEIVED.labels(_source, _outcome)
for _outcome in (NotificationStatus.DONE, NotificationStatus.IGNORED, NotificationStatus.FAILED, "retry"):
    PROCESSED.labels(_outcome)


class InvalidNotification(ValueError):
    """The body is not a notification (not JSON, no topic or resource, no user id)."""


# --- intake ----------------------------------------------------------------------------------------


def _storable(text: str) -> str:
    """`text` as both databases store it: no NUL (PostgreSQL refuses it), no lone surrogate."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or _storable(value) != value:
        return None  # an identifier with bytes no database keeps is no identifier
    return value[:limit]


MAX_BODY_DEPTH = 6


def _clean(value: Any, depth: int = 0) -> Any:
    """The body as stored: its text storable, its nesting and lists bounded (it is only shown)."""
    if depth > MAX_BODY_DEPTH:
        return None
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, dict):
        return {_storable(str(key))[:64]: _clean(item, depth + 1) for key, item in list(value.items())[:30]}
    if isinstance(value, list):
        return [_clean(item, depth + 1) for item in value[:30]]
    if isinstance(value, float) and value != value:  # NaN: JSON has none
        return None
    return value


def _number(value: Any) -> int | None:
    # §0: ids come as numbers or strings for the same field.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_ID else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = parse_datetime(value.strip())
    except ValueError:
        return None
    if moment is None or timezone.is_naive(moment):
        return None
    return moment


def parse(data: Any) -> services.Incoming:
    """A notification from its decoded JSON (§6.2), leniently; InvalidNotification if it is none.

    `topic`, `resource` and a positive `user_id` are required; everything else is optional
    and dropped when malformed (some topics spell `recieved`).
    """
    if not isinstance(data, dict):
        raise InvalidNotification("the body must be a JSON object")
    topic = _text(data.get("topic"), 64)
    resource = _text(data.get("resource"), 255)
    if topic is None or resource is None:
        raise InvalidNotification("a notification needs 'topic' and 'resource'")
    user_id = _number(data.get("user_id"))
    if user_id is None:
        raise InvalidNotification("a notification needs a numeric 'user_id'")
    attempts = data.get("attempts")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 < attempts < 10_000:
        attempts = 1
    return services.Incoming(
        ml_id=_text(data.get("_id"), 64) or _text(data.get("id"), 64),
        topic=topic,
        resource=resource,
        ml_user_id=user_id,
        application_id=_number(data.get("application_id")),
        attempts=attempts,
        sent_at=_moment(data.get("sent")),
        received_at=_moment(data.get("received")) or _moment(data.get("recieved")),
        body=_clean(data),
    )


def decode(raw: bytes) -> Any:
    """The JSON of a webhook body; InvalidNotification if it is too large or not JSON."""
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidNotification(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidNotification("the body is not JSON") from None


def is_foreign(incoming: services.Incoming) -> bool:
    """A notification of another ML application (§6.2 `application_id`)."""
    ours = settings.ML_APPLICATION_ID
    return ours is not None and incoming.application_id is not None and incoming.application_id != ours


@dataclass
class Receipt:
    """What the intake did with one notification: `stored`, `ignored` or `foreign`."""

    outcome: str
    notification: Notification | None = None


def receive(data: Any, *, source: str = Notification.Source.WEBHOOK) -> Receipt:
    """Take one notification in: store it (or drop another application's) and queue processing.

    Raises InvalidNotification for a body that is not one. Never calls ML.
    """
    incoming = parse(data)
    if is_foreign(incoming):
        RECEIVED.labels(source, "foreign").inc()
        _count_foreign()
        logger.info(
            "notification from another application dropped",
            extra={"event": "notification_foreign", "application_id": incoming.application_id},
        )
        return Receipt("foreign")
    notification = services.notification_store(incoming=incoming, source=source)
    if notification.status == NotificationStatus.PENDING:
        RECEIVED.labels(source, "stored").inc()
        kick(notification.account_id)
        return Receipt("stored", notification)
    RECEIVED.labels(source, "ignored").inc()
    return Receipt("ignored", notification)


def _count_foreign() -> None:
    try:
        if not cache.add(FOREIGN_KEY, 1, timeout=None):
            cache.incr(FOREIGN_KEY)
    except (ValueError, *UNAVAILABLE):
        pass  # a lost count: the log line above still says it


def foreign_count() -> int:
    """Notifications of other applications dropped since the cache was last cleared."""
    return int(cache.get(FOREIGN_KEY) or 0)


def kick(account_id) -> None:
    """Queue the processing of `account_id`'s notifications, once per merge window.

    The first notification of a burst queues one task, ML_NOTIFICATION_MERGE_SECONDS ahead;
    the ones arriving before it runs ride along. The task clears the mark when it starts,
    so a notification arriving during processing queues the next run. A mark whose task was
    lost expires, and the minute job (`process_due`) picks up whatever is left.
    """
    from sync import tasks  # tasks import this module

    merge = settings.ML_NOTIFICATION_MERGE_SECONDS
    try:
        if not cache.add(KICK_KEY.format(account_id), 1, timeout=int(merge) + 60):
            return
        tasks.process_account_notifications.apply_async_on_commit((str(account_id),), countdown=merge)
    except UNAVAILABLE as error:
        # Stored is what matters: the minute job processes it.
        logger.warning(
            "notification processing not queued",
            extra={
                "event": "notification_kick_failed",
                "account_id": str(account_id),
                "error": type(error).__name__,
            },
        )


# --- processing ------------------------------------------------------------------------------------


@dataclass
class Processed:
    """One processing run of one account: what became of its notifications, and the calls."""

    account_id: str
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ml_calls: int = 0


def _ignore_reason(account: MLAccount | None) -> str | None:
    if account is None:
        return services.REMOVED_ACCOUNT
    if account.status == AccountStatus.PAUSED or not account.sync_enabled:
        return "syncing of this account is paused: its numbers are read when it resumes"
    if account.status == AccountStatus.EXPIRED:
        return "the account needs reconnecting: Mercado Livre refused its authorization"
    return None


def process_account(account_id) -> Processed:
    """Process the account's due notifications: merge per count, re-read each count once.

    Called by the `process_account_notifications` task. Safe to run twice at once: the
    claim hands each notification to one run.
    """
    account_id = str(account_id)
    cache.delete(KICK_KEY.format(account_id))
    result = Processed(account_id)
    claimed = services.notification_claim(account_id=account_id)
    result.claimed = len(claimed)
    if not claimed:
        return result
    account = (
        MLAccount.objects.filter(pk=account_id)
        .only("id", "status", "sync_enabled", "ml_user_id", *MIRROR_FIELDS)
        .first()
    )
    # Delivered by ML, not recovered from its missed feeds (those come an hour late at the
    # earliest): what says the account's notifications arrive, so it may be polled less.
    delivered = [row.arrived_at for row in claimed if row.source == Notification.Source.WEBHOOK]
    if delivered:
        services.mlaccount_note_notifications(account_id=account_id, notified_at=max(delivered))
    reason = _ignore_reason(account)
    if reason is not None:
        result.outcomes[NotificationStatus.IGNORED] += services.notification_finish(
            notifications=claimed, status=NotificationStatus.IGNORED, reason=reason
        )
        return _log(result)

    groups: dict[str, list[Notification]] = defaultdict(list)
    for row in claimed:
        groups[row.count_field or ""].append(row)
    if "" in groups:  # topics stored as pending before the app stopped using them
        result.outcomes[NotificationStatus.IGNORED] += services.notification_finish(
            notifications=groups.pop(""), status=NotificationStatus.IGNORED, reason=services.UNSUPPORTED_TOPIC
        )
    with ml_http.count_calls() as calls:
        try:
            with ml_deadline.within(PROCESS_DEADLINE_SECONDS):
                _process_groups(account, groups, result)
        finally:
            result.ml_calls = calls.count
            record_calls(calls.count)
    return _log(result)


def _process_groups(account: MLAccount, groups: dict[str, list[Notification]], result: Processed) -> None:
    pending = dict(groups)
    token = None
    while pending:
        column, rows = next(iter(pending.items()))
        try:
            if token is None:
                token = tokens.get_fresh_access_token(account.pk)
            value, token = _read_count(account, column, token, rows)
        except (MLRateLimited, MLUnavailable) as error:
            # Everything not done yet waits for a better moment (ML's Retry-After, if any).
            reason = f"Mercado Livre was unavailable ({type(error).__name__}); retrying"
            delay = getattr(error, "retry_after", None)
            for waiting in pending.values():
                later, failed = services.notification_retry(notifications=waiting, reason=reason, delay=delay)
                result.outcomes["retry"] += later
                result.outcomes[NotificationStatus.FAILED] += failed
            return
        except (MLInvalidGrant, MLUnauthorized, NoRefreshToken) as error:
            reason = (
                "Mercado Livre refused the account's authorization: reconnect it"
                if not isinstance(error, MLUnauthorized)
                else "Mercado Livre refused the account's token (401) after a renewal"
            )
            for waiting in pending.values():
                result.outcomes[NotificationStatus.FAILED] += services.notification_finish(
                    notifications=waiting, status=NotificationStatus.FAILED, reason=reason
                )
            return
        except (MLBadResponse, MLError) as error:
            result.outcomes[NotificationStatus.FAILED] += services.notification_finish(
                notifications=rows, status=NotificationStatus.FAILED, reason=f"Mercado Livre: {error}"[:255]
            )
        else:
            now = timezone.now()
            services.mlaccount_set_count(account_id=account.pk, field=column, value=value, at=now)
            services.count_snapshot_refresh(account_id=account.pk, at=now)
            done = services.notification_finish(notifications=rows, status=NotificationStatus.DONE, at=now)
            result.outcomes[NotificationStatus.DONE] += done
            # The lag each row now stores (Notification.lag_ms); rows whose claim another run
            # took over meanwhile (fewer done than asked, rare) are not told apart: the first ones.
            for row in rows[:done]:
                LAG.observe(lag_ms(row, now) / 1000)
        del pending[column]


def _read_count(account: MLAccount, column: str, token: str, rows: list[Notification]) -> tuple[int, str]:
    """The count of `column` and the token that read it (renewed once after a 401).

    Questions and claims refresh their mirrors (sync.mirrors), which read the count on the
    way; the questions the notifications name are fetched one by one (§11.1: re-fetch the
    resource), so one answered at ML leaves the queue now.
    """
    try:
        return _read(account, column, token, rows), token
    except MLUnauthorized:
        # A token can die before its expiry (§1.6): renew once and read again; the
        # caller keeps the renewed token for the other counts of the run.
        token = tokens.get_fresh_access_token(account.pk, force=True)
        return _read(account, column, token, rows), token


def _read(account: MLAccount, column: str, token: str, rows: list[Notification]) -> int:
    if column == "cached_questions":
        named = tuple(dict.fromkeys(n for n in (_resource_id(row.resource) for row in rows) if n))
        value = mirrors.refresh_questions(token, account, named=named)
        if value:
            # Titles only: the queue shows them. Buyers' nicknames wait for the account's
            # next sync, so a burst of questions costs no /users lookups here.
            mirrors.fill_details(token, account, buyers=False)
        return value
    if column == "cached_claims":
        return mirrors.refresh_claims(token, account)
    if column == "cached_orders":
        # The orders named are read again into the mirror, which then counts them itself
        # (while its first import runs, the count is read at ML).
        named = tuple(dict.fromkeys(n for n in (_resource_id(row.resource) for row in rows) if n))
        if mirrors.settle_orders(token, account, named):
            return mirrors.recent_orders(account.pk)
    return COUNTERS[column](token, account.ml_user_id)


def _resource_id(resource: str) -> int | None:
    """The id at the end of a resource path (`/questions/123` -> 123), if it is one."""
    tail = resource.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() and 0 < len(tail) <= 18 else None


def _log(result: Processed) -> Processed:
    for outcome, n in result.outcomes.items():
        if n:
            PROCESSED.labels(outcome).inc(n)
    logger.info(
        "notifications processed",
        extra={
            "event": "notifications_processed",
            "account_id": result.account_id,
            "claimed": result.claimed,
            "ml_calls": result.ml_calls,
            **{f"n_{name}": n for name, n in result.outcomes.items()},
        },
    )
    return result


def record_calls(n: int, *, now: float | None = None) -> None:
    """Count ML calls made by notification processing, per minute (for the dispatcher)."""
    if n <= 0:
        return
    key = CALLS_KEY.format(int((now or time.time()) // 60))
    try:
        if not cache.add(key, n, timeout=(CALLS_WINDOW_MINUTES + 2) * 60):
            cache.incr(key, n)
    except (ValueError, *UNAVAILABLE):
        pass  # an estimate: one lost minute only makes the next dispatch a little bolder


def calls_per_minute(*, now: float | None = None) -> float:
    """ML calls per minute that notification processing made over the last few whole minutes."""
    minute = int((now or time.time()) // 60)
    keys = [CALLS_KEY.format(minute - back) for back in range(1, CALLS_WINDOW_MINUTES + 1)]
    try:
        counts = cache.get_many(keys)
    except UNAVAILABLE:
        return 0.0
    return sum(int(value) for value in counts.values()) / CALLS_WINDOW_MINUTES


def process_due(*, limit: int = 1000) -> int:
    """Queue processing for every account with notifications due (the minute job's sweep).

    Catches what a lost kick, a retry's back-off or a dead worker's claim left behind.
    Returns how many accounts were queued.
    """
    from sync import tasks

    orphans = services.notification_orphans_finish()
    if orphans:
        PROCESSED.labels(NotificationStatus.IGNORED).inc(orphans)
        logger.info(
            "notifications of removed accounts ignored",
            extra={"event": "notifications_orphaned", "n": orphans},
        )
    account_ids = services.notification_accounts_due(limit=limit)
    for account_id in account_ids:
        tasks.process_account_notifications.apply_async_on_commit((account_id,))
    return len(account_ids)


# --- missed feeds (§6.5) ---------------------------------------------------------------------------


@dataclass
class Recovery:
    """What one recovery run found."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    foreign: int = 0
    invalid: int = 0
    ml_calls: int = 0
    skipped: str = ""
    errors: list[str] = field(default_factory=list)


def _recovery_tokens(limit: int = 3):
    """Access tokens of connected sellers to ask /missed_feeds with (§11.1: any seller's)."""
    candidates = (
        MLAccount.objects.filter(status=AccountStatus.ACTIVE)
        .order_by(F("last_sync").desc(nulls_last=True), "created_at")
        .values_list("id", flat=True)[:limit]
    )
    for account_id in candidates:
        try:
            yield tokens.get_fresh_access_token(account_id)
        except (MLInvalidGrant, MLUnauthorized, NoRefreshToken, MLAccount.DoesNotExist):
            continue


def recover_missed_feeds() -> Recovery:
    """Read the notifications ML could not deliver into the intake; return what was found.

    One pass per subscribed topic, `items` once per site of the connected accounts, each
    paged until a short page (at most MAX_RECOVERY_PAGES). A message already stored (same
    ML id) is counted as a duplicate and left alone.
    """
    report = Recovery()
    app_id = settings.ML_APPLICATION_ID
    if app_id is None:
        report.skipped = "no numeric ML application id (ML_CLIENT_ID)"
        return report
    token = next(_recovery_tokens(), None)
    if token is None:
        report.skipped = "no connected account with a working token"
        return report
    sites = sorted(set(MLAccount.objects.values_list("site_id", flat=True))) or [settings.ML_SITE_ID]
    queries = [
        (topic, site) for topic in SUBSCRIBED_TOPICS for site in (sites if topic == "items" else [None])
    ]
    with ml_http.count_calls() as calls:
        try:
            for topic, site in queries:
                try:
                    _recover_topic(token, app_id, topic, site, report)
                except MLError as error:
                    report.errors.append(f"{topic}{'/' + site if site else ''}: {type(error).__name__}")
                    if isinstance(error, MLRateLimited | MLUnauthorized):
                        break
        finally:
            report.ml_calls = calls.count
    logger.info(
        "missed feeds recovered",
        extra={
            "event": "notifications_recovered",
            "fetched": report.fetched,
            "stored": report.stored,
            "duplicates": report.duplicates,
            "foreign": report.foreign,
            "invalid": report.invalid,
            "ml_calls": report.ml_calls,
            "errors": ",".join(report.errors) or None,
        },
    )
    return report


def _give_an_id(message: dict) -> None:
    """Make sure a missed message has an `_id`, so a later recovery run finds it stored.

    ML's messages carry one (§6.5); one that does not is named after what it says
    (topic, resource, seller, when ML received it), which is the same on every run.
    """
    if _text(message.get("_id"), 64) is not None:
        return
    if _text(message.get("id"), 64) is not None:
        message["_id"] = message["id"]
        return
    fields = [str(message.get(key)) for key in ("topic", "resource", "user_id", "received", "sent")]
    message["_id"] = "mf-" + hashlib.sha256("\x1f".join(fields).encode("utf-8", "replace")).hexdigest()[:40]


def _recover_topic(token: str, app_id: int, topic: str, site: str | None, report: Recovery) -> None:
    limit = resources.MISSED_FEEDS_PAGE
    for page in range(MAX_RECOVERY_PAGES):
        messages = resources.missed_feeds(
            token, app_id, topic=topic, site_id=site, offset=page * limit, limit=limit
        )
        report.fetched += len(messages)
        for message in messages:
            _give_an_id(message)
        ids = {_text(m.get("_id"), 64) for m in messages} - {None}
        known = set(Notification.objects.filter(ml_id__in=ids).values_list("ml_id", flat=True))
        for message in messages:
            ml_id = _text(message.get("_id"), 64)
            if ml_id is not None and ml_id in known:
                report.duplicates += 1
                continue
            try:
                receipt = receive(message, source=Notification.Source.MISSED_FEEDS)
            except InvalidNotification:
                RECEIVED.labels(Notification.Source.MISSED_FEEDS, "invalid").inc()
                report.invalid += 1
                continue
            if receipt.outcome == "foreign":
                report.foreign += 1
            else:
                report.stored += 1
            if ml_id is not None:
                known.add(ml_id)
        if len(messages) < limit:
            return
