"""The ML resources the app reads: the seller's profile and the dashboard counts (§3, §4).

One plain function per endpoint, each a GET with the seller's bearer token through
``http.request_json`` (so every call spends the shared rate budget). Counts ask for
``limit=1`` and read the total; a total that is missing or not a non-negative integer
raises ``MLBadResponse`` rather than showing a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import MLBadResponse
from .http import request_json


@dataclass(frozen=True)
class MLUser:
    """The seller behind a token, from ``GET /users/me``."""

    id: int
    nickname: str
    email: str
    site_id: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class Counts:
    """The dashboard numbers of one seller account."""

    products: int
    orders: int
    questions: int
    claims: int

    @property
    def issues(self) -> int:
        """Things that need the seller: unanswered questions plus open claims."""
        return self.questions + self.claims


def _user_id(value: Any) -> int:
    # The same id field comes as a number or a string depending on the endpoint (§0).
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    raise MLBadResponse("/users/me answered without a valid id")


def _text(body: dict[str, Any], field: str, *, required: bool = False) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise MLBadResponse(f"/users/me field {field!r} is missing or not a string")
    return value


def users_me(token: str) -> MLUser:
    """Return the seller who owns ``token`` (§3 ``GET /users/me``).

    A 206 Partial Content answer counts as success (the Users API sends it when a
    sub-block such as the reputation failed); only the top-level fields are read.
    """
    body = request_json("GET", "/users/me", token=token, expected=(200, 206))
    return MLUser(
        id=_user_id(body.get("id")),
        nickname=_text(body, "nickname", required=True),
        email=_text(body, "email"),
        site_id=_text(body, "site_id", required=True),
        first_name=_text(body, "first_name"),
        last_name=_text(body, "last_name"),
    )


def _total(body: dict[str, Any], *path: str) -> int:
    value: Any = body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MLBadResponse(f"count field {'.'.join(path)!r} is missing or not a non-negative integer")
    return value


def count_active_listings(token: str, user_id: int) -> int:
    """Count the seller's active listings (§4.1 ``GET /users/{id}/items/search``, ``paging.total``)."""
    body = request_json(
        "GET",
        f"/users/{int(user_id)}/items/search",
        token=token,
        params={"status": "active", "limit": 1},
    )
    return _total(body, "paging", "total")


def orders_window_start(now: datetime, days: int) -> datetime:
    """The start of an orders window of ``days`` before ``now`` as ML applies it (§4.2: cut to the hour)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return (now.astimezone(UTC) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def orders_date_from(now: datetime, days: int) -> str:
    """Format the start of an orders window as ML expects it (§4.2).

    ML ignores minutes and seconds in order date filters, so truncate to the hour
    ourselves and say so in the value: ``2015-07-01T00:00:00.000-00:00``, in UTC.
    """
    return orders_window_start(now, days).strftime("%Y-%m-%dT%H:00:00.000-00:00")


# The sales the dashboard counts: every §4.2 order status but `cancelled` and `invalid`
# (ML's void for a fraudulent buyer's order). ML's search has no "all but" filter, so the
# count asks for each of these; `pending_cancel` still counts until ML cancels the sale.
COUNTED_ORDER_STATUSES = (
    "confirmed",
    "payment_required",
    "payment_in_process",
    "partially_paid",
    "paid",
    "partially_refunded",
    "pending_cancel",
)


def count_recent_orders(token: str, user_id: int, *, now: datetime | None = None, days: int = 30) -> int:
    """Count the seller's sales of the last ``days`` days that were not cancelled (§4.2).

    ``GET /orders/search`` with ``seller`` (the mandatory base filter), the creation date
    and ``order.status`` as a comma list of ``COUNTED_ORDER_STATUSES``; the total is
    ``paging.total``.
    """
    body = request_json(
        "GET",
        "/orders/search",
        token=token,
        params={
            "seller": int(user_id),
            "order.status": ",".join(COUNTED_ORDER_STATUSES),
            "order.date_created.from": orders_date_from(now or datetime.now(UTC), days),
            "limit": 1,
        },
    )
    return _total(body, "paging", "total")


def count_unanswered_questions(token: str, user_id: int) -> int:
    """Count the questions waiting for an answer (§4.3 ``GET /questions/search``).

    Always send ``api_version=4``. This endpoint has no ``paging``: the count is the
    top-level ``total``.
    """
    body = request_json(
        "GET",
        "/questions/search",
        token=token,
        params={"seller_id": int(user_id), "status": "UNANSWERED", "api_version": 4, "limit": 1},
    )
    return _total(body, "total")


def count_open_claims(token: str, user_id: int) -> int:
    """Count the open claims against the seller (§4.4 ``GET /post-purchase/v1/claims/search``).

    ``players.role`` and ``players.user_id`` must be sent together (400 otherwise);
    the total is ``paging.total`` (items sit under ``data``, not ``results``).
    """
    body = request_json(
        "GET",
        "/post-purchase/v1/claims/search",
        token=token,
        params={
            "players.role": "respondent",
            "players.user_id": int(user_id),
            "status": "opened",
            "limit": 1,
        },
    )
    return _total(body, "paging", "total")


def fetch_counts(token: str, user_id: int) -> Counts:
    """Fetch the four dashboard counts (§4.1-§4.4), one ML call each, in this order."""
    return Counts(
        products=count_active_listings(token, user_id),
        orders=count_recent_orders(token, user_id),
        questions=count_unanswered_questions(token, user_id),
        claims=count_open_claims(token, user_id),
    )


# The largest page of /missed_feeds integrations use in practice (§11.1; ML's own maximum
# is not documented, its default is 10).
MISSED_FEEDS_PAGE = 200


def missed_feeds(
    token: str,
    app_id: int,
    *,
    topic: str,
    site_id: str | None = None,
    offset: int = 0,
    limit: int = MISSED_FEEDS_PAGE,
) -> list[dict[str, Any]]:
    """One page of the notifications ML could not deliver (§6.5 ``GET /missed_feeds``).

    ``topic=items`` needs ``site_id`` (400 otherwise): one call per site. The answer is
    ``{"messages": [...]}`` with no paging block; a page shorter than ``limit`` is the last.
    Messages that are not objects are dropped here; their fields are checked by the caller.
    """
    params: dict[str, Any] = {
        "app_id": int(app_id),
        "topic": topic,
        "offset": int(offset),
        "limit": int(limit),
    }
    if site_id:
        params["site_id"] = site_id
    body = request_json("GET", "/missed_feeds", token=token, params=params)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise MLBadResponse("/missed_feeds answered without a 'messages' list")
    return [message for message in messages if isinstance(message, dict)]
