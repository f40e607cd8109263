"""Mercado Livre at the HTTP boundary, with `responses`: the shapes of mercadolivre-api.md.

The root conftest's `ml` fixture is the mock; these are its URLs, bodies and endpoints.
"""

import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs

import responses

API = "https://api.mercadolibre.com"
TOKEN_URL = API + "/oauth/token"
COUNT_URLS = {
    "products": re.compile(re.escape(API) + r"/users/\d+/items/search"),
    "orders": API + "/orders/search",
    "questions": API + "/questions/search",
    "claims": API + "/post-purchase/v1/claims/search",
}
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ml"


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


def add_counts(rsps, *, products=12, orders=5, questions=3, claims=1, status=200):
    """Answer the four count endpoints (any seller) with the given totals or one status.

    A count given as None is left unregistered, for a test to answer it itself.
    """
    if status != 200:
        body = {"message": "error", "error": "error", "status": status, "cause": []}
        for url in COUNT_URLS.values():
            rsps.add(responses.GET, url, json=body, status=status)
        return
    if products is not None:
        rsps.add(responses.GET, COUNT_URLS["products"], json={"paging": {"total": products}, "results": []})
    rsps.add(responses.GET, COUNT_URLS["orders"], json={"paging": {"total": orders}, "results": []})
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
