"""Mercado Livre at the HTTP boundary, with `responses`: the shapes of mercadolivre-api.md.

The root conftest's `ml` fixture is the mock; these are its URLs, bodies and endpoints.
"""

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import responses

API = "https://api.mercadolibre.com"
TOKEN_URL = API + "/oauth/token"
COUNT_URLS = {
    "products": re.compile(re.escape(API) + r"/users/\d+/items/search"),
    "orders": API + "/orders/search",
    "questions": API + "/questions/search",
    "claims": API + "/post-purchase/v1/claims/search",
}
USERS_URL = re.compile(re.escape(API) + r"/users/(\d+)(\?.*)?$")
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ml"
ORDER_BASE = 2_000_009_000_000_000


def load_fixture(name: str) -> dict:
    """Return a JSON shape copied from mercadolivre-api.md (tests/fixtures/ml/<name>.json)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def ml_error(name: str) -> dict:
    """Return one of the documented ML error bodies from tests/fixtures/ml/errors.json."""
    return load_fixture("errors")[name]


def token_body(user_id: int, n: int) -> dict:
    return {
        "access_token": f"APP_USR-123-010203-{n:032x}-{user_id}",
        "token_type": "Bearer",
        "expires_in": 21600,
        "scope": "offline_access read write",
        "user_id": user_id,
        "refresh_token": f"TG-{n:024x}-{user_id}",
    }


def order_json(n: int, *, now: datetime | None = None, status: str = "paid", **changes) -> dict:
    """ML's §4.2 order object number `n`: created n + 1 hours before the hour of `now`,
    one line of two units at 50.00 (fee 6.00 each), in BRL. `changes` replace fields."""
    hour = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    created = hour - timedelta(hours=n + 1)
    body = load_fixture("orders_search")["results"][0] | {
        "id": ORDER_BASE + n,
        "status": status,
        "date_created": created.isoformat(timespec="milliseconds"),
        "date_closed": (created + timedelta(seconds=2)).isoformat(timespec="milliseconds"),
        "date_last_updated": (created + timedelta(minutes=5)).isoformat(timespec="milliseconds"),
        "last_updated": (created + timedelta(minutes=5)).isoformat(timespec="milliseconds"),
        "total_amount": 100.0,
        "paid_amount": 100.0 if status == "paid" else 0.0,
        "currency_id": "BRL",
        "order_items": [
            {
                "item": {
                    "id": "MLB1054990648",
                    "title": "Camiseta",
                    "variation_id": None,
                    "seller_sku": None,
                },
                "quantity": 2,
                "unit_price": 50.0,
                "sale_fee": 6.0,
                "listing_type_id": "gold_special",
                "currency_id": "BRL",
            }
        ],
    }
    return body | changes


def orders_search(total: int):
    """A callback for ``/orders/search``: `total` paid orders of the last days (``order_json``),
    paged by offset and limit, whatever the other filters (every one matches them)."""

    def callback(request):
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
        results = [order_json(n) for n in range(offset, min(offset + limit, total))]
        body = {
            "query": None,
            "results": results,
            "paging": {"total": total, "offset": offset, "limit": limit},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    return callback


def reputation_json(user_id: int, **reputation) -> dict:
    """``GET /users/{id}`` of the seller (§3): the documented profile, `reputation` replacing
    parts of its `seller_reputation`."""
    body = load_fixture("users_me")
    return body | {"id": user_id, "seller_reputation": body["seller_reputation"] | reputation}


def add_reputation(rsps, **reputation):
    """Answer ``GET /users/{id}`` (any seller) with the documented profile and reputation."""

    def callback(request):
        user_id = int(USERS_URL.match(request.url).group(1))
        return 200, {"Content-Type": "application/json"}, json.dumps(reputation_json(user_id, **reputation))

    rsps.add_callback(responses.GET, USERS_URL, callback=callback)


def add_counts(rsps, *, products=12, orders=5, questions=3, claims=1, status=200, reputation=True):
    """Answer the four count endpoints (any seller) with the given totals or one status.

    Orders are a search of `orders` order objects (``orders_search``): the mirror reads them
    and counts them. With `reputation`, the seller's profile answers too (the daily
    reputation snapshot). A count given as None is left unregistered, for a test to answer
    it itself.
    """
    if status != 200:
        body = {"message": "error", "error": "error", "status": status, "cause": []}
        for url in COUNT_URLS.values():
            rsps.add(responses.GET, url, json=body, status=status)
        return
    if reputation:
        add_reputation(rsps)
    if products is not None:
        rsps.add(responses.GET, COUNT_URLS["products"], json={"paging": {"total": products}, "results": []})
    if orders is not None:
        rsps.add_callback(responses.GET, COUNT_URLS["orders"], callback=orders_search(orders))
    rsps.add(responses.GET, COUNT_URLS["questions"], json={"total": questions, "questions": []})
    rsps.add(responses.GET, COUNT_URLS["claims"], json={"paging": {"total": claims}, "data": []})


class RotatingTokenEndpoint:
    """ML's token endpoint with single-use refresh tokens: only the latest one works.

    `calls` counts every request, `issued` the pairs handed out, `invalid_grants` the
    refusals; `current` and `last_access` are the pair ML would accept now.
    """

    def __init__(self, *, user_id: int, current_refresh: str):
        self.user_id = user_id
        self.current = current_refresh
        self.last_access = None
        self.lock = threading.Lock()
        self.calls = 0
        self.issued = 0
        self.invalid_grants = 0

    def __call__(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        with self.lock:
            self.calls += 1
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.current:
                self.invalid_grants += 1
                return (
                    400,
                    {},
                    '{"error":"invalid_grant","error_description":"used","status":400,"cause":[]}',
                )
            self.issued += 1
            body = token_body(self.user_id, 1000 + self.issued)
            self.current, self.last_access = body["refresh_token"], body["access_token"]
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    def install(self, rsps):
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self)
        return self
