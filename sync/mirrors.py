"""Incremental fetchers of the account's mirrors: the desk (issue 14), orders and reputation (issue 15).

Called inside a sync (sync.engine) and by notification processing (sync.notifications), with
the account's token; every call goes through the shared budget (accounts.mercadolivre.http).
Each refresh returns ML's count, so it replaces the count call it stands for: a sync of an
account whose desk did not move still costs one call for questions and one for claims.

Questions (§4.3, §11.3). The newest page (DESC, 50) comes first. When the whole list fits in
it (a page shorter than asked for is the last), it is the whole truth. Otherwise the
questions a notification named and the page did not show are read one by one, and if ML's
total then equals what the mirror holds, nothing older moved and nothing more is read; if
it differs (a question was answered or deleted at ML, or this is the first sync), the list
is scanned again oldest first, page by page, and what the scan did not see leaves the
mirror. A scan also runs every QUESTIONS_FULL_SCAN hours, for the rare moves that cancel out
in the total. Past offset 1,000 ML needs a scan cursor (§4.3): the mirror then holds the
1,000 oldest and whatever the newest pages bring.

Claims (§4.4): the open ones are listed whole, 100 a page (usually one call); each claim's
`/detail` (due date, who must act) is read when the claim is new or ML's `last_updated`
moved, at most CLAIM_DETAILS_PER_RUN a run.

Item titles come from the multiget (20 ids a call), cached in ListingItem for
ITEM_CACHE_DAYS; buyers' nicknames (for saved replies) from `GET /users/{id}`, a few a run,
oldest questions first.

Orders (§4.2, §11.3): the first read imports the last 90 days, later ones what ML changed
since the previous read began, an hour earlier (ML cuts the date to the hour), upserted by
id; ORDER_PAGES_PER_RUN pages a sync, a longer read going on in the next. Reputation
(§11.2): one snapshot a day, from the seller's profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import deadline as ml_deadline
from accounts.mercadolivre import desk as ml_desk
from accounts.mercadolivre import ratelimit, resources
from accounts.mercadolivre import sales as ml_sales
from accounts.mercadolivre.errors import MLBadRequest, MLBadResponse, MLError, MLForbidden, MLUnauthorized
from accounts.models import (
    ORDERS_HISTORY_DAYS,
    Claim,
    ListingItem,
    MLAccount,
    Order,
    Question,
    QuestionStatus,
)

logger = logging.getLogger(__name__)

QUESTIONS_FULL_SCAN = timedelta(hours=6)
CLAIM_DETAILS_PER_RUN = 50
ITEM_CACHE_DAYS = 7
ITEM_CALLS_PER_RUN = 50  # 1,000 titles
BUYER_LOOKUPS_PER_RUN = 10
# The oldest questions without a nickname looked at per run (some may be remembered misses).
BUYER_CANDIDATES = 200
BUYER_MISS_KEY = "desk:buyer-miss:{}"
BUYER_MISS_SECONDS = 24 * 3600
# A notification run fetches the questions it names one by one up to this many; a larger
# burst is settled by a scan instead.
NAMED_QUESTIONS_PER_RUN = 20


@dataclass
class Desk:
    """What one refresh of an account's desk found: ML's two counts."""

    questions: int
    claims: int


def _open_questions(account_id) -> int:
    return Question.objects.filter(account_id=account_id, status=QuestionStatus.UNANSWERED).count()


def refresh_questions(token: str, account: MLAccount, *, named: tuple[int, ...] = ()) -> int:
    """Bring the account's unanswered questions in line with ML; return ML's count.

    `named`: questions a notification pointed at. Those a complete read did not list are
    gone from the queue already; when the newest page is not the whole list, each one it did
    not show is fetched on its own (`GET /questions/{id}`) before the totals are compared,
    so one answered or deleted at ML leaves now without a scan. A burst of more than
    NAMED_QUESTIONS_PER_RUN is settled by a scan instead.
    """
    started = timezone.now()
    newest = ml_desk.search_unanswered_questions(token, account.ml_user_id)
    services.question_mirror_store(account_id=account.pk, questions=newest.questions, seen_at=started)
    seen = {q.id for q in newest.questions}
    if newest.size < ml_desk.QUESTIONS_PAGE:
        # The whole list fit in one page: anything else the mirror holds is gone.
        services.question_mirror_prune(account_id=account.pk, seen_before=started)
        return newest.total
    scanned_at = account.questions_scanned_at
    scan = (
        scanned_at is None
        or started - scanned_at >= QUESTIONS_FULL_SCAN
        or len(named) > NAMED_QUESTIONS_PER_RUN
    )
    if not scan:
        # Settled before the totals are compared: a question answered at ML (what a
        # notification usually names) leaves now, the totals then agree, and one call
        # stands for a scan of the whole list.
        seen |= _settle_named(token, account, named, seen)
        scan = _open_questions(account.pk) != newest.total
    if scan:
        scanned, complete = _scan_questions(token, account, started)
        seen |= scanned
        if not complete:
            _settle_named(token, account, named, seen)
    return newest.total


def _settle_named(token: str, account: MLAccount, named: tuple[int, ...], seen: set[int]) -> set[int]:
    """Fetch each named question a read did not list (at most NAMED_QUESTIONS_PER_RUN); their ids."""
    settled = [question_id for question_id in named[:NAMED_QUESTIONS_PER_RUN] if question_id not in seen]
    for question_id in settled:
        _settle_question(token, account, question_id)
    return set(settled)


def _scan_questions(token: str, account: MLAccount, started) -> tuple[set[int], bool]:
    """Read the unanswered questions oldest first and prune what was not seen.

    Returns the ids seen and whether the scan reached the end of the list.
    """
    seen: set[int] = set()
    offset, last, complete = 0, None, False
    while offset < ml_desk.QUESTIONS_MAX_OFFSET:
        page = ml_desk.search_unanswered_questions(token, account.ml_user_id, offset=offset, ascending=True)
        services.question_mirror_store(account_id=account.pk, questions=page.questions, seen_at=started)
        seen.update(q.id for q in page.questions)
        if page.questions:
            last = max(q.date_created for q in page.questions)
        offset += ml_desk.QUESTIONS_PAGE
        if page.size < ml_desk.QUESTIONS_PAGE or offset >= page.total:
            complete = True
            break
    if complete:
        services.question_mirror_prune(account_id=account.pk, seen_before=started)
    elif last is not None:
        # Stopped at ML's offset limit: prune only inside the range the scan covered.
        services.question_mirror_prune(account_id=account.pk, seen_before=started, created_until=last)
    services.mlaccount_questions_scanned(account_id=account.pk, at=started)
    return seen, complete


def _settle_question(token: str, account: MLAccount, question_id: int) -> None:
    try:
        question = ml_desk.get_question(token, question_id)
    except (MLBadRequest, MLForbidden, MLBadResponse) as error:
        # Gone (404), not this seller's, or unreadable: it is not a question to answer here.
        logger.info(
            "question not readable",
            extra={"event": "desk", "account_id": str(account.pk), "error": type(error).__name__},
        )
        Question.objects.filter(pk=question_id, account_id=account.pk, answered_by__isnull=True).delete()
        return
    services.question_mirror_settle(account_id=account.pk, question=question, seen_at=timezone.now())


def refresh_claims(token: str, account: MLAccount) -> int:
    """Bring the account's open claims in line with ML, with their detail; return ML's count."""
    started = timezone.now()
    offset, total, stale = 0, 0, []
    while True:
        page = ml_desk.search_open_claims(token, account.ml_user_id, offset=offset)
        total = page.total
        stale += services.claim_mirror_store(account_id=account.pk, claims=page.claims, seen_at=started)
        offset += ml_desk.CLAIMS_PAGE
        if page.size < ml_desk.CLAIMS_PAGE or offset >= page.total:
            services.claim_mirror_prune(account_id=account.pk, seen_before=started)
            break
        if offset > ml_desk.CLAIMS_MAX_OFFSET:
            break
    # Details never read first (a new claim has no due date yet), then those that moved.
    pending = sorted(stale, key=lambda pk: pk)
    missing = set(Claim.objects.filter(pk__in=pending, detail_for__isnull=True).values_list("pk", flat=True))
    pending.sort(key=lambda pk: pk not in missing)
    for claim_id in pending[:CLAIM_DETAILS_PER_RUN]:
        detail = ml_desk.get_claim_detail(token, claim_id)
        services.claim_detail_store(claim_id=claim_id, detail=detail)
    return total


def fill_details(token: str, account: MLAccount, *, buyers: bool = True) -> int:
    """Titles of the queue's items and buyers' nicknames, as far as this run allows.

    Best effort: a failure here leaves a title or a nickname for the next run and does not
    fail the sync (its counts and mirrors are stored already). Returns the calls it made.
    """
    calls = 0
    try:
        calls += _fill_items(token, account)
        if buyers:
            calls += _fill_buyers(token, account)
    except MLError as error:
        logger.warning(
            "desk details not read",
            extra={"event": "desk", "account_id": str(account.pk), "error": type(error).__name__},
        )
    return calls


def _fill_items(token: str, account: MLAccount) -> int:
    fresh = ListingItem.objects.filter(fetched_at__gte=timezone.now() - timedelta(days=ITEM_CACHE_DAYS))
    wanted = list(
        Question.objects.filter(account_id=account.pk, status=QuestionStatus.UNANSWERED)
        .exclude(item_id="")
        .exclude(item_id__in=fresh.values("id"))
        .order_by("item_id")
        .values_list("item_id", flat=True)
        .distinct()[: ITEM_CALLS_PER_RUN * ml_desk.ITEMS_PER_CALL]
    )
    calls = 0
    for start in range(0, len(wanted), ml_desk.ITEMS_PER_CALL):
        chunk = wanted[start : start + ml_desk.ITEMS_PER_CALL]
        services.listing_items_store(items=ml_desk.get_items(token, chunk), at=timezone.now())
        calls += 1
    return calls


def _fill_buyers(token: str, account: MLAccount) -> int:
    candidates = list(
        dict.fromkeys(
            Question.objects.filter(
                account_id=account.pk, status=QuestionStatus.UNANSWERED, buyer_nickname=""
            )
            .filter(~Q(buyer_id=None))
            .order_by("date_created")
            .values_list("buyer_id", flat=True)[:BUYER_CANDIDATES]
        )
    )
    if not candidates:
        return 0
    # A buyer who asked before (on any account) is known already: no call for them.
    known = dict(
        Question.objects.filter(buyer_id__in=candidates)
        .exclude(buyer_nickname="")
        .values_list("buyer_id", "buyer_nickname")
    )
    if known:
        services.question_buyers_store(nicknames=known)
    calls = 0
    for buyer_id in candidates:
        if buyer_id in known:
            continue
        if calls >= BUYER_LOOKUPS_PER_RUN:
            break
        if cache.get(BUYER_MISS_KEY.format(buyer_id)):
            continue
        calls += 1
        try:
            nickname = ml_desk.get_user_nickname(token, buyer_id)
        except (MLBadRequest, MLForbidden, MLBadResponse):
            nickname = ""
        if nickname:
            services.question_buyers_store(nicknames={buyer_id: nickname})
        else:
            cache.set(BUYER_MISS_KEY.format(buyer_id), 1, BUYER_MISS_SECONDS)
    return calls


# --- sales: orders and reputation (issue 15) -----------------------------------------------------

# Pages of orders one sync reads at the most (1,000 orders): a first import of a big seller
# goes on over the next syncs from where this one stopped.
ORDER_PAGES_PER_RUN = 20
# ML cuts order date filters to the hour (§4.2): each read starts an hour before the last
# one began, so nothing changed in the hour it cut off is missed.
ORDERS_OVERLAP = timedelta(hours=1)
# A notification run reads the orders it names one by one up to this many; a larger burst
# is read by the incremental search instead.
NAMED_ORDERS_PER_RUN = 20
# A long read stops for this sync when less than this is left of the sync's deadline, so the
# desk's calls after it still have their time (a web request's "sync now", 20 s, reads one
# page; the background syncs go on with the import).
ORDERS_RESERVE_SECONDS = 60
RECENT_ORDERS_DAYS = 30  # the dashboard's orders count


def refresh_orders(token: str, account: MLAccount, *, now=None) -> bool:
    """Bring the account's orders mirror up to date with ML; whether it now is.

    The first read imports the orders created in the last ORDERS_HISTORY_DAYS; every later
    one asks for the orders ML changed since the previous read began, less ORDERS_OVERLAP
    (`order.date_last_updated.from`), newest first (an import fills the recent days
    first), and upserts them. A read stops (False) after ORDER_PAGES_PER_RUN pages, when
    the shared budget has no token to spare within ratelimit.SPARE_WAIT (the pages after
    the first never queue for it: an import runs on what the syncs leave), or nearer the
    sync's deadline than ORDERS_RESERVE_SECONDS; the next sync goes on from its offset,
    which is kept after every page, so that a call failing mid-way loses nothing read
    before it. Paging is safe while orders change: an order only ever enters the query's
    results (a new one, or one changed since), never leaves them, so it shifts later ones
    down, which re-reads one, never skips one.
    """
    now = now or timezone.now()
    started = account.orders_read_started_at or now
    offset = account.orders_offset if account.orders_read_started_at else 0
    if account.orders_synced_at is None:
        filters = {"created_from": started - timedelta(days=ORDERS_HISTORY_DAYS)}
    else:
        filters = {"updated_from": account.orders_synced_at - ORDERS_OVERLAP}
    for pages in range(ORDER_PAGES_PER_RUN):
        left = ml_deadline.time_left()
        if pages and left is not None and left < ORDERS_RESERVE_SECONDS:
            break
        # Pages after the first run on the budget the syncs leave: none is waited for.
        if pages and not ratelimit.spare():
            break
        page = ml_sales.search_orders(token, account.ml_user_id, offset=offset, budget=not pages, **filters)
        services.order_mirror_store(account_id=account.pk, orders=page.orders)
        offset += page.size
        if page.size < ml_sales.ORDERS_PAGE or offset >= page.total:
            services.mlaccount_orders_synced(account_id=account.pk, synced_at=started)
            account.orders_synced_at, account.orders_read_started_at, account.orders_offset = started, None, 0
            return True
        services.mlaccount_orders_progress(account_id=account.pk, started_at=started, offset=offset)
        account.orders_read_started_at, account.orders_offset = started, offset
    return False


def orders_current(account: MLAccount) -> bool:
    """Whether the account's orders mirror holds every order (its first import ended)."""
    return account.orders_synced_at is not None and account.orders_read_started_at is None


def recent_orders(account_id, *, now=None) -> int:
    """The dashboard's orders count, from a current mirror: what `resources.count_recent_orders`
    would read at ML (the sales created in the last 30 days, the hour cut as ML cuts it, in
    every status but cancelled and invalid)."""
    since = resources.orders_window_start(now or timezone.now(), RECENT_ORDERS_DAYS)
    return Order.objects.filter(
        account_id=account_id, date_created__gte=since, status__in=resources.COUNTED_ORDER_STATUSES
    ).count()


def settle_orders(token: str, account: MLAccount, named: tuple[int, ...]) -> bool:
    """Read again the orders notifications named (§11.1); whether the mirror is current.

    More than NAMED_ORDERS_PER_RUN are read by the incremental search instead, which also
    brings whatever else changed. An order ML will not show (gone, not this seller's) is
    left as the mirror has it. While the first import runs, the syncs go on with it and
    nothing is read here (False: the count is read at ML instead).
    """
    if not orders_current(account):
        return False
    if len(named) > NAMED_ORDERS_PER_RUN:
        return refresh_orders(token, account)
    for order_id in named:
        try:
            order = ml_sales.get_order(token, order_id)
        except (MLBadRequest, MLForbidden, MLBadResponse) as error:
            logger.info(
                "order not readable",
                extra={"event": "sales", "account_id": str(account.pk), "error": type(error).__name__},
            )
            continue
        services.order_mirror_store(account_id=account.pk, orders=[order])
    return True


def refresh_reputation(token: str, account: MLAccount, *, now=None) -> bool:
    """Take the day's reputation snapshot if the account has none yet; whether one was taken.

    Best effort, like `fill_details`: ML refusing the profile, or answering without a
    reputation, leaves the snapshot for the next sync and does not fail this one. A 401
    goes up (the sync renews the token once and reads again).
    """
    now = now or timezone.now()
    day = timezone.localdate(now)
    if account.reputation_day == day:
        return False
    try:
        reputation = ml_sales.get_reputation(token, account.ml_user_id)
    except MLUnauthorized:
        raise
    except MLError as error:
        logger.warning(
            "reputation not read",
            extra={"event": "sales", "account_id": str(account.pk), "error": type(error).__name__},
        )
        return False
    services.reputation_snapshot_store(account_id=account.pk, reputation=reputation, day=day, at=now)
    account.reputation_day = day
    return True
