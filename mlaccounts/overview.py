"""The overview page's model: what `?status=&site=&has=&q=&sort=&page=` asks for, the page of
rows it shows, and the version of that page that its live refresh compares.

The query lives in the URL, so a filtered view can be bookmarked, shared and refreshed;
values the page does not know are dropped rather than refused (a stale bookmark still
opens). The rows come from accounts.selectors (the access helper's visibility and roles);
this module only decorates them for the templates.

The live refresh polls the list every few seconds with the versions of what it shows
(`versions`): a page whose rows, totals and wording have not changed answers 304 with no
body; a page that holds the same rows in the same order gets only the rows (and totals)
that changed; anything else gets the whole list. A row's version covers every value it
displays and the states derived from the clock (syncing, queued, token about to die);
relative times ("3 minutes ago") are kept current by the browser from their `datetime`, so
they do not force a refresh every minute. Cards also show the token's health in percent:
for them a ten-minute tick stands in for the clock.
"""

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from accounts import selectors, tokens
from accounts.mercadolivre import oauth
from accounts.models import AccountStatus
from accounts.roles import abilities
from accounts.services import error_backoff_seconds
from mlaccounts.templatetags.dashboard import count, duration, site_name, timetag
from sync import ondemand
from sync.outcomes import problem

PAGE_SIZE = 50
# Up to this many accounts the overview shows cards, past it a table, unless the user chose.
CARDS_UP_TO = 6
VIEWS = ("table", "cards")
SEARCH_MAX_LENGTH = 100
# The token of an account about to die: expiring within this (renewals run well before).
TOKEN_DYING = timedelta(minutes=30)
# Everything else that moves with the clock refreshes at most this often.
TICK = timedelta(minutes=10)
SITE_IDS = frozenset(site for site, _name in oauth.SITES)

ROW_URL_NAMES = ("account", "account_sync", "account_pause", "account_resume", "account_primary")
_ID = "00000000-0000-0000-0000-000000000000"

# What a row shows, for the page's version (see the module docstring).
ROW_FIELDS = (
    "pk",
    "account_name",
    "nickname",
    "site_id",
    "status",
    "role",
    "is_primary",
    "sync_enabled",
    "sync_interval",
    "error_count",
    "last_sync",
    "next_sync",
    "last_sync_status",
    "last_event_kind",
    "cached_products",
    "cached_orders",
    "cached_questions",
    "cached_claims",
    "cached_at",
    "token_expires_at",
    "token_obtained_at",
    "phase",
)


@dataclass(frozen=True)
class OverviewQuery:
    """The overview's filters, sort and page, as read from (and written back to) the URL."""

    statuses: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    has: tuple[str, ...] = ()
    search: str = ""
    sort: str = "problems"
    page: str = "1"

    @classmethod
    def from_params(cls, params) -> "OverviewQuery":
        def chosen(name, allowed, normalise=str.lower):
            values = []
            for raw in params.getlist(name):
                for value in raw.split(","):
                    value = normalise(value.strip())
                    if value in allowed and value not in values:
                        values.append(value)
            return tuple(values)

        sort = params.get("sort", "")
        if sort.removeprefix("-") not in selectors.OVERVIEW_SORTS:
            sort = "problems"
        if sort == "-problems":
            sort = "problems"
        page = params.get("page", "1")
        return cls(
            statuses=chosen("status", selectors.OVERVIEW_STATUSES),
            sites=chosen("site", SITE_IDS, normalise=str.upper),
            has=chosen("has", selectors.OVERVIEW_HAS),
            search=" ".join(params.get("q", "").split())[:SEARCH_MAX_LENGTH],
            sort=sort,
            page=page if page.isascii() and page.isdigit() and len(page) < 7 else "1",
        )

    @property
    def status_only(self) -> str:
        """The one status the view is filtered to, if that is its only filter."""
        only = len(self.statuses) == 1 and not (self.sites or self.has or self.search)
        return self.statuses[0] if only else ""

    @property
    def filtered(self) -> bool:
        return bool(self.statuses or self.sites or self.has or self.search)

    def params(self, **changes) -> str:
        """The query string of this view (with `changes`), leaving defaults out."""
        query = replace(self, **changes)
        pairs = [("status", ",".join(query.statuses)), ("site", ",".join(query.sites))]
        pairs += [("has", ",".join(query.has)), ("q", query.search)]
        pairs += [("sort", "" if query.sort == "problems" else query.sort)]
        pairs += [("page", "" if query.page == "1" else query.page)]
        return urlencode([(name, value) for name, value in pairs if value])

    def filter_params(self) -> list[tuple[str, str]]:
        """The filters alone, as hidden fields for "apply to everything that matches"."""
        pairs = [("status", ",".join(self.statuses)), ("site", ",".join(self.sites))]
        pairs += [("has", ",".join(self.has)), ("q", self.search)]
        return [(name, value) for name, value in pairs if value]

    def sort_link(self, column: str) -> str:
        """The query string that sorts by `column`: ascending first, then descending."""
        if self.sort == column:
            return self.params(sort=f"-{column}", page="1")
        return self.params(sort=column, page="1")

    def status_link(self, status: str | None) -> str:
        """The query string of the totals' links: only `status`, or no filter at all."""
        return OverviewQuery(statuses=(status,) if status else (), sort=self.sort).params()

    def has_link(self, what: str) -> str:
        return OverviewQuery(has=(what,), sort=f"-{what}").params()


@dataclass
class Overview:
    """One page of the overview: totals, the rows, and the version of both."""

    query: OverviewQuery
    totals: dict
    page: object
    accounts: list
    view: str
    now: datetime
    can_bulk: bool = False
    labels: dict = field(default_factory=dict)
    etag: str = ""
    layout: str = ""
    totals_version: str = ""
    sorts: dict = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        """ "?" and this view's query string, or "": appended to the rows' action URLs, so
        the list an action answers with is the one the user is looking at."""
        params = self.query.params()
        return f"?{params}" if params else ""

    @property
    def prev_params(self) -> str:
        """The query string of the previous page ("" on the first)."""
        return self.query.params(page=str(self.page.number - 1)) if self.page.has_previous() else ""

    @property
    def next_params(self) -> str:
        return self.query.params(page=str(self.page.number + 1)) if self.page.has_next() else ""

    @property
    def connect_url(self) -> str:
        return reverse("dashboard:connect")

    @property
    def url(self) -> str:
        """This view of the overview, to come back to after an action."""
        return reverse("dashboard:overview") + self.suffix


class Presenter:
    """What a row shows that filters and tags would compute, computed once here instead.

    With 50 rows a page, each template filter or tag a row calls costs the page a
    millisecond or more; the page's time must not grow much with its rows
    (`manage.py bench_overview`). Words that are the same on every row are translated once
    per page (`labels`), names of sites and statuses once per value.
    """

    def __init__(self):
        self.sites: dict[str, str] = {}
        self.statuses = {value: str(label) for value, label in AccountStatus.choices}

    def __call__(self, account) -> None:
        if account.site_id not in self.sites:
            self.sites[account.site_id] = site_name(account.site_id)
        account.site_label = self.sites[account.site_id]
        account.status_label = self.statuses.get(account.status, account.status)
        account.products_text = count(account.cached_products)
        account.orders_text = count(account.cached_orders)
        account.questions_text = count(account.cached_questions)
        account.claims_text = count(account.cached_claims)
        account.last_tag = timetag(account.last_sync) if account.last_sync else ""
        account.next_tag = timetag(account.next_sync, kind="next") if account.next_sync else ""
        expires = account.health.expires_at
        account.expires_tag = timetag(expires, kind="next") if expires else ""
        account.tick_label = _("Tick %(name)s") % {"name": account.account_name}
        account.problem_text = (
            problem(account.last_event_kind) if account.last_sync_status == "failed" else ""
        )
        account.retry_text = retry_sentence(account.retry) if account.retry else ""


def retry_text(account) -> str:
    """The back-off of a failing account explained, or "" (the account page's words too)."""
    retry = retry_note(account)
    return retry_sentence(retry) if retry else ""


def retry_sentence(retry: dict) -> str:
    """Why a failing account's next try is later than its interval, in words."""
    return ngettext(
        "(after %(failures)s failed sync in a row it is retried every %(backoff)s "
        "instead of every %(interval)s)",
        "(after %(failures)s failed syncs in a row it is retried every %(backoff)s "
        "instead of every %(interval)s)",
        retry["failures"],
    ) % {
        "failures": retry["failures"],
        "backoff": duration(retry["backoff"]),
        "interval": duration(retry["interval"]),
    }


def labels() -> dict[str, str]:
    """The words every row of the table repeats, in the reader's language, once per page."""
    return {
        "status": _("Status"),
        "country": _("Country"),
        "listings": _("Listings"),
        "active_listings": _("Active listings"),
        "orders": _("Orders"),
        "orders_30": _("Orders (30 days)"),
        "questions": _("Questions"),
        "unanswered": _("Unanswered questions"),
        "claims": _("Claims"),
        "open_claims": _("Open claims"),
        "token": _("Token"),
        "sync": _("Sync"),
        "primary": _("Primary"),
        "refused_title": _("Mercado Livre refused this authorization."),
        "refused": _("Refused"),
        "expired": _("Expired"),
        "renewed": _("renewed at the next sync"),
        "expiring": _("Expiring"),
        "valid": _("Valid"),
        "reconnect": _("Reconnect"),
        "sync_now": _("Sync now"),
        "pause": _("Pause syncing"),
        "resume": _("Resume syncing"),
        "last_success": _("Last successful sync:"),
        "last_sync": _("Last sync:"),
        "never": _("never"),
        "next_sync": _("Next sync:"),
        "after_reconnecting": _("after reconnecting"),
        "paused": _("paused"),
    }


def choose_view(request, total_accounts: int) -> str:
    """Table or cards: the user's remembered choice (`?view=` sets it), otherwise cards
    for a handful of accounts and a table past that."""
    asked = request.GET.get("view")
    if asked in VIEWS:
        request.session["overview_view"] = asked
        return asked
    remembered = request.session.get("overview_view")
    if remembered in VIEWS:
        return remembered
    return "cards" if total_accounts <= CARDS_UP_TO else "table"


def row_urls() -> dict[str, tuple[str, str]]:
    # Reversed once per page with a stand-in id, then filled in per row: a {% url %} per
    # button made reversing a quarter of the page's time with 100 accounts.
    urls = {name: tuple(reverse(f"dashboard:{name}", args=[_ID]).split(_ID)) for name in ROW_URL_NAMES}
    # Each count of questions and claims opens its queue, filtered to the account.
    urls["questions"] = (reverse("dashboard:questions") + "?account=", "")
    urls["claims"] = (reverse("dashboard:claims") + "?account=", "")
    return urls


def retry_note(account) -> dict | None:
    """Why the next try of a failing account is later than its interval, or None."""
    if account.status != "error" or not account.error_count:
        return None
    backoff = error_backoff_seconds(sync_interval=account.sync_interval, error_count=account.error_count)
    if backoff <= account.sync_interval:
        return None
    return {"failures": account.error_count, "backoff": backoff, "interval": account.sync_interval}


def build(request, *, user, workspace, query: OverviewQuery, now: datetime) -> Overview:
    """The page of the overview `query` asks for: three queries (totals, count, rows)."""
    totals = selectors.mlaccount_overview_totals(user=user, workspace=workspace)
    queryset = selectors.mlaccount_overview(
        user=user,
        workspace=workspace,
        now=now,
        token_margin=TOKEN_DYING,
        statuses=query.statuses,
        sites=query.sites,
        has=query.has,
        search=query.search,
        sort=query.sort,
    )
    paginator = Paginator(queryset, PAGE_SIZE)
    if not query.filtered:
        paginator.count = totals["accounts"]  # known already: one query less
    page = paginator.get_page(query.page)
    accounts = list(page.object_list)
    urls = row_urls()
    present = Presenter()
    for account in accounts:
        account.health = tokens.token_health(account, now=now)
        account.can = abilities(account.role)
        account.urls = {name: f"{head}{account.pk}{tail}" for name, (head, tail) in urls.items()}
        account.phase = ondemand.sync_phase(account, now=now)
        account.first_sync = account.cached_at is None
        account.dying = account.health.needs_refresh or account.attention == 2
        account.retry = retry_note(account)
        present(account)
    overview = Overview(
        query=query,
        totals=totals,
        page=page,
        accounts=accounts,
        view=choose_view(request, totals["accounts"]),
        now=now,
        can_bulk="sync" in getattr(workspace, "can", ()),
        labels=labels(),
    )
    overview.sorts = {column: query.sort_link(column) for column in selectors.OVERVIEW_SORTS}
    versions(overview, workspace=workspace)
    return overview


def _short(value) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=4).hexdigest()


def row_version(account, *, cards: bool, now: datetime) -> str:
    """The version of one row: every value it shows, and the states it derives from the
    clock. Cards also show the token's health in percent, which moves with the clock: for
    them a ten-minute tick stands in for it (see the module docstring)."""
    values = tuple(getattr(account, name) for name in ROW_FIELDS)
    tick = int(now.timestamp() // TICK.total_seconds()) if cards else 0
    return _short((values, account.dying, account.health.is_expired, account.health.needs_refresh, tick))


def versions(overview: Overview, *, workspace) -> None:
    """Set the versions the live refresh compares (see the module docstring):

    - each row's `version`;
    - `layout`: what the page is (language, workspace and role, view, query, page) and
      which rows it holds in which order;
    - `totals_version`: the totals;
    - `etag`: all of them together.
    """
    head = (
        settings.STATIC_URL,
        get_language(),
        str(workspace.pk),
        sorted(getattr(workspace, "can", ())),
        overview.view,
        overview.query.params(),
        overview.page.number,
        overview.page.paginator.count,
        [str(account.pk) for account in overview.accounts],
    )
    cards = overview.view == "cards"
    for account in overview.accounts:
        account.version = row_version(account, cards=cards, now=overview.now)
    overview.layout = _short(head)
    overview.totals_version = _short(sorted(overview.totals.items()))
    rows = ",".join(account.version for account in overview.accounts)
    overview.etag = f'"{overview.layout}-{overview.totals_version}-{_short(rows)}"'


def changed_rows(overview: Overview, shown: str) -> tuple[list, bool] | None:
    """What changed since the client's view `shown` ("layout;totals;v1,v2,…", the versions
    of the page it shows, in order): the rows to send again and whether the totals changed.
    None when the page itself changed (another language, filter, page, or other rows or
    another order): then the whole list is sent."""
    try:
        layout, totals, rows = shown.split(";")
    except ValueError:
        return None
    if layout != overview.layout:
        return None
    versions = rows.split(",") if rows else []
    if len(versions) != len(overview.accounts):
        return None
    changed = [
        account for account, seen in zip(overview.accounts, versions, strict=True) if account.version != seen
    ]
    return changed, totals != overview.totals_version
