"""Routes of the REST resources (§3, §4.1, §4.2, §6.5): the seller's profile and buyers' public
ones, the listings search, the orders search and single orders, and the missed notifications
feed. Questions, claims and items by id are the desk's (``desk_routes``).

Orders (``orders``) are a schedule in absolute time evaluated at the sandbox's clock
(``SandboxState.now()``): ``GET /orders/search`` filters by ``order.status`` (a comma list),
``order.date_created.from/.to`` and ``order.date_last_updated.from/.to`` (bounds inclusive,
cut to the hour as ML does), sorts by creation date (``sort=date_asc``, the default, or
``date_desc``) and pages with ``offset`` and ``limit`` (≤ 51); ``GET /orders/{id}`` answers
the token's seller's order, 404 ``order_not_found`` for an unknown id and 403
``not_owned_order`` for another seller's. The profile's ``seller_reputation`` is the day's
(``seller_reputation``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .errors import FORBIDDEN, Reply, api_error_body, bad_request
from .handler import BaseHandler, Route
from .notifications import MISSED_FEEDS_MAX_LIMIT
from .orders import OrderFilter
from .sellers import (
    BUYER_IDS,
    ORDER_STATUSES,
    SITES,
    item_counts,
    item_id,
    private_user,
    public_user,
)

ORDERS_MAX_LIMIT = 51  # §4.2: secondary sources say 50/51
ORDER_NOT_FOUND = api_error_body(404, "order_not_found", "Order not found")


class ResourceRoutes(BaseHandler):
    """The REST resources the app reads (§3, §4.1, §4.2), plus grant deletion and ``/sites``."""

    ROUTES: list[Route] = [
        (re.compile(r"/users/me/?"), {"GET": "users_me"}, "users_me", "api"),
        (re.compile(r"/users/(?P<user_id>\d+)/?"), {"GET": "user"}, "users", "api"),
        (re.compile(r"/users/(?P<user_id>\d+)/items/search/?"), {"GET": "items_search"}, "items", "api"),
        (
            re.compile(r"/users/(?P<user_id>\d+)/applications/(?P<app_id>[^/]+)/?"),
            {"DELETE": "delete_grant"},
            "applications",
            "api",
        ),
        (re.compile(r"/orders/search/?"), {"GET": "orders_search"}, "orders", "api"),
        (re.compile(r"/orders/(?P<order_id>[^/]+)/?"), {"GET": "order"}, "orders", "api"),
        (re.compile(r"/sites/?"), {"GET": "sites"}, "sites", "api"),
        (re.compile(r"/missed_feeds/?"), {"GET": "missed_feeds"}, "missed_feeds", "api"),
    ]

    def _private_user(self, user_id: int) -> dict[str, Any]:
        # The seller as configured: its volume, not the live counts, drives the reputation.
        return private_user(self.state.base_seller(user_id), self.state.now())

    def route_users_me(self) -> None:
        _, user_id = self._authenticate()
        self._reply(200, self._private_user(user_id))

    def route_user(self, user_id: str) -> None:
        """The token's own seller: the private profile (§3). A buyer (an id in ``BUYER_IDS`` that
        is no demo seller): the public profile any token reads. Another seller: 403."""
        _, token_user = self._authenticate()
        wanted = int(user_id)
        if wanted == token_user:
            self._reply(200, self._private_user(token_user))
        elif wanted in BUYER_IDS and not self.state.is_demo_seller(wanted):
            self._reply(200, public_user(wanted, self.state.seller(token_user).site_id))
        else:
            raise Reply(403, dict(FORBIDDEN))

    def route_delete_grant(self, user_id: str, app_id: str) -> None:
        client_id, token_user = self._authenticate()
        if int(user_id) != token_user:
            raise Reply(403, dict(FORBIDDEN))
        app = self.state.apps.get(client_id)
        if app is None or app_id not in {str(app.app_id), app.client_id}:
            raise Reply(404, api_error_body(404, "not_found", f"Application {app_id} not found"))
        self.state.revoke(token_user, client_id=client_id)
        self._reply(200, {"user_id": str(token_user), "app_id": app_id, "msg": "Autorización eliminada"})

    def route_sites(self) -> None:
        if "access_token" in self._query or self.headers.get("Authorization"):
            self._authenticate()  # public, but a token that is sent must be valid
        self._reply(200, SITES)

    def route_missed_feeds(self) -> None:
        """§6.5: notifications that never got their 200, of the token's app, oldest first.

        ML does not say whose token it wants; integrations use a connected seller's (§11.1),
        so any live token of the app works. ``app_id`` is the numeric APP ID or the client
        id. ``limit`` is 1..200 (default 10): larger is a 400, not a silent clamp, so a
        client that pages with more learns it at once.
        """
        client_id, _ = self._authenticate()
        raw_app_id = self._param("app_id")
        if not raw_app_id:
            raise bad_request("Missing required parameter: app_id")
        app = self.state.apps.get(client_id)
        if app is None or raw_app_id not in {str(app.app_id), app.client_id}:
            raise Reply(403, dict(FORBIDDEN))
        topic = self._param("topic") or None
        site_id = self._param("site_id") or None
        if topic == "items" and site_id is None:
            # §6.5: item notifications are read one site at a time.
            raise bad_request("Missing required parameter: site_id (required for topic items)")
        limit = self._int_param("limit", 10)
        offset = self._int_param("offset", 0)
        if not 1 <= limit <= MISSED_FEEDS_MAX_LIMIT:
            raise bad_request(f"Limit must be between 1 and {MISSED_FEEDS_MAX_LIMIT}")
        messages = self.state.notifications.missed_feeds(
            app_id=app.app_id, topic=topic, site_id=site_id, offset=offset, limit=limit
        )
        # §6.5: the documented answer has no paging block.
        self._reply(200, {"messages": messages})

    def route_items_search(self, user_id: str) -> None:
        seller = self._own_user(user_id)
        limit = self._int_param("limit", 50)
        offset = self._int_param("offset", 0)
        if limit > 100:
            raise bad_request("Limit must be lower or equal to 100")
        if self._param("search_type") == "scan":
            raise bad_request("search_type=scan is not implemented by the sandbox")
        if offset + limit > 1000:
            # §4.1: past 1000 results ML wants search_type=scan, not offsets.
            raise bad_request("Invalid offset. Use search_type=scan to read more than 1000 results")
        counts = item_counts(seller)
        status = self._param("status")
        if status is None:
            start, total = 0, sum(counts.values())
        else:
            start, total = 0, 0
            for name, count in counts.items():
                if name == status:
                    total = count
                    break
                start += count
        number = self.state._seller_number(seller.id)
        results = [item_id(seller, number, start + k) for k in range(offset, min(offset + limit, total))]
        body: dict[str, Any] = {
            "seller_id": str(seller.id),
            "query": None,
            "paging": {"limit": limit, "offset": offset, "total": total},
            "results": results,
            "orders": [{"id": "stop_time_asc", "name": "Order by stop time ascending"}],
            "available_orders": [
                {"id": "stop_time_desc", "name": "Order by stop time descending"},
                {"id": "start_time_desc", "name": "Order by start time descending"},
            ],
        }
        if self._param("include_filters") == "true":
            body["filters"] = [] if status is None else [{"id": "status", "values": [{"id": status}]}]
            body["available_filters"] = [
                {
                    "id": "status",
                    "name": "Status",
                    "type": "text",
                    "values": [
                        {"id": name, "name": name.title(), "results": n} for name, n in counts.items()
                    ],
                }
            ]
        self._reply(200, body)

    def _date_param(self, name: str) -> float | None:
        raw = self._param(name)
        if not raw:
            return None
        try:
            # An unencoded "+" in the offset arrives as a space.
            parsed = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"Invalid date format for {name}: {raw}", "invalid_date_format") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # §4.2: ML truncates order date filters to the hour.
        return parsed.replace(minute=0, second=0, microsecond=0).timestamp()

    def _order_statuses(self) -> tuple[str, ...]:
        """The ``order.status`` filter (a comma list, §4.2); every status when absent."""
        raw = self._param("order.status") or ""
        names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
        unknown = [name for name in names if name not in ORDER_STATUSES]
        if unknown:
            raise bad_request(f"Invalid value for parameter order.status: {unknown[0]}")
        return names or ORDER_STATUSES

    def _order_date(self, name: str) -> int | None:
        # In ms, as the orders module counts.
        moment = self._date_param(name)
        return None if moment is None else int(moment * 1000)

    def route_orders_search(self) -> None:
        """§4.2: the seller's orders matching the filters, by creation date; see the module docstring."""
        if self._param("seller") is None:
            self._authenticate()
            raise bad_request("Missing required parameter: seller", "invalid_request")
        seller = self._own_user(self._param("seller"))
        limit = min(self._int_param("limit", 50), ORDERS_MAX_LIMIT)
        offset = self._int_param("offset", 0)
        query = OrderFilter(
            statuses=self._order_statuses(),
            created_from=self._order_date("order.date_created.from"),
            created_to=self._order_date("order.date_created.to"),
            updated_from=self._order_date("order.date_last_updated.from"),
            updated_to=self._order_date("order.date_last_updated.to"),
        )
        sort = self._param("sort", "date_asc")
        if sort not in {"date_asc", "date_desc"}:
            raise bad_request(f"Invalid sort: {sort}")
        orders = self.state.seller_orders(seller.id)
        total, page = orders.search(query, ascending=sort == "date_asc", offset=offset, limit=limit)
        self._reply(
            200,
            {
                "query": None,
                "results": [orders.to_json(record) for record in page],
                "sort": {"id": sort, "name": "Date ascending" if sort == "date_asc" else "Date descending"},
                "available_sorts": [
                    {"id": "date_desc" if sort == "date_asc" else "date_asc", "name": "Date"}
                ],
                "filters": [],
                "paging": {"total": total, "offset": offset, "limit": limit},
                "display": "complete",
            },
        )

    def route_order(self, order_id: str) -> None:
        """§4.2 ``GET /orders/{id}``: the order as it stands now, if the token's seller's."""
        _, user_id = self._authenticate()
        if not (order_id.isascii() and order_id.isdigit()):
            raise Reply(400, api_error_body(400, "invalid_order_id", f"Invalid order id: {order_id}"))
        wanted = int(order_id)
        owner = self.state.order_owner(wanted, user_id)
        if owner is None:
            raise Reply(404, dict(ORDER_NOT_FOUND))
        if owner != user_id:
            raise Reply(
                403,
                api_error_body(403, "not_owned_order", f"The order {wanted} does not belong to the caller"),
            )
        orders = self.state.seller_orders(user_id)
        record = orders.get(wanted)
        if record is None:  # the clock moved back between the two looks
            raise Reply(404, dict(ORDER_NOT_FOUND))
        self._reply(200, orders.to_json(record))
