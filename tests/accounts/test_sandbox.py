"""The bundled sandbox, exercised over real HTTP like the app and the browser use it."""

import base64
import hashlib
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts.mercadolivre.sandbox import (
    CALLBACK_PATH,
    DEMO_SELLERS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SandboxState,
    mint_into_state_file,
    start_sandbox,
)
from accounts.mercadolivre.sandbox.sellers import standing_orders

REDIRECT_URI = f"http://127.0.0.1:8000{CALLBACK_PATH}"
VERIFIER = "verifier-" + "k" * 50
CLIENT = {"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET}
ACCESS_TOKEN_RE = re.compile(r"^APP_USR-\d+-\d{6}-[0-9a-f]{32}-(\d+)$")
TG_RE = re.compile(r"^TG-[0-9a-f]{24}-(\d+)$")
UNAUTHORIZED = {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}
FORBIDDEN = {"message": "forbidden", "error": "forbidden", "status": 403, "cause": []}
TIMEOUT = 10
# Every order status but cancelled and invalid: the sales a seller's `orders` number counts.
STANDING = (
    "confirmed,payment_required,payment_in_process,partially_paid,paid,partially_refunded,pending_cancel"
)
ALL_STATUSES = [*STANDING.split(","), "cancelled", "invalid"]


def _seller(nickname):
    return next(seller for seller in DEMO_SELLERS if seller.nickname == nickname)


MEDIUM = _seller("CASA_DA_ANA")
BIG = _seller("MEGASTORE_BR")
NEW = _seller("LOJA_NOVA_TESTE")
MODA = _seller("MODA_PAULISTA")


@pytest.fixture
def sandbox():
    server = start_sandbox(port=0)
    yield server
    server.stop()


def _challenge(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _auth_params(**overrides):
    params = {
        "response_type": "code",
        "client_id": SANDBOX_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "code_challenge": _challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def _decide(sandbox, decision, user_id=None, **overrides):
    form = {**_auth_params(**overrides), "decision": decision}
    if user_id is not None:
        form["user_id"] = str(user_id)
    return requests.post(f"{sandbox.url}/authorization", data=form, allow_redirects=False, timeout=TIMEOUT)


def _authorize(sandbox, user_id, **overrides):
    response = _decide(sandbox, "allow", user_id, **overrides)
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def _token(sandbox, **form):
    return requests.post(f"{sandbox.url}/oauth/token", data={**CLIENT, **form}, timeout=TIMEOUT)


def _exchange(sandbox, code, **overrides):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    form.update(overrides)
    return _token(sandbox, **{name: value for name, value in form.items() if value is not None})


def _refresh(sandbox, refresh_token):
    return _token(sandbox, grant_type="refresh_token", refresh_token=refresh_token)


def _control(sandbox, name, **body):
    response = requests.post(f"{sandbox.url}/_sandbox/{name}", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def _mint(sandbox, user_id):
    return _control(sandbox, "mint", user_id=user_id)


def _get(sandbox, path, token=None, headers=None, **params):
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{sandbox.url}{path}", params=params, headers=headers, timeout=TIMEOUT)


def _orders_from(days, now=None):
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return (moment - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000-00:00")


def _freeze(sandbox):
    """Stop the sandbox's data clock at the current time (orders and statuses stop moving)."""
    now = time.time()
    sandbox.state.clock = lambda: now
    return now


def _standing(seller, now, days=30):
    """What the 30-day count of standing sales says at ``now``."""
    return standing_orders(seller, since=now - days * 86400, now=now)


# --- Authorization page ---------------------------------------------------------------------------


def test_authorization_page_lists_every_demo_seller_with_allow_and_deny(sandbox):
    response = requests.get(f"{sandbox.url}/authorization", params=_auth_params(), timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<title>Mercado Livre sandbox</title>" in page
    for seller in DEMO_SELLERS:
        assert f'<input type="radio" name="user_id" value="{seller.id}"' in page
        assert f"> {seller.nickname}</label>" in page
    assert '<button type="submit" name="decision" value="allow" id="allow">Allow</button>' in page
    assert '<button type="submit" name="decision" value="deny" id="deny">Deny</button>' in page
    assert 'name="code_challenge"' in page
    assert "<script" not in page


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_type": "token"},
        {"client_id": "someone-else"},
        {"redirect_uri": f"http://evil.example{CALLBACK_PATH}"},
        {"redirect_uri": "http://127.0.0.1:8000/other/callback/"},
        {"redirect_uri": REDIRECT_URI + "?next=/"},
        {"code_challenge": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "S512"},
    ],
    ids=["response-type", "client", "http-host", "path", "query", "no-challenge", "no-method", "bad-method"],
)
def test_authorization_rejects_invalid_requests_with_an_error_page(sandbox, overrides):
    response = requests.get(f"{sandbox.url}/authorization", params=_auth_params(**overrides), timeout=TIMEOUT)

    assert response.status_code == 400
    assert "Sorry, the application cannot connect to your account" in response.text


def test_https_redirect_uris_on_any_host_are_accepted(sandbox):
    params = _auth_params(redirect_uri=f"https://accounts.example.com{CALLBACK_PATH}")

    assert requests.get(f"{sandbox.url}/authorization", params=params, timeout=TIMEOUT).status_code == 200


def test_allow_redirects_with_a_code_and_the_state_untouched(sandbox):
    state = "a b&c=d/é+%"

    response = _decide(sandbox, "allow", MEDIUM.id, state=state)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [state]
    assert TG_RE.match(query["code"][0]).group(1) == str(MEDIUM.id)


def test_deny_redirects_with_access_denied_and_the_state(sandbox):
    response = _decide(sandbox, "deny")

    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["error_description"]
    assert query["state"] == ["state-123"]
    assert "code" not in query


def test_allow_without_a_seller_or_with_a_tampered_form_is_refused(sandbox):
    assert _decide(sandbox, "allow").status_code == 400
    assert _decide(sandbox, "allow", MEDIUM.id, redirect_uri="https://x.example/cb").status_code == 400


# --- Token endpoint: authorization code -----------------------------------------------------------


def test_code_exchange_returns_the_ml_token_body(sandbox):
    code = _authorize(sandbox, NEW.id)

    response = _exchange(sandbox, code)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "user_id", "refresh_token"}
    assert ACCESS_TOKEN_RE.match(body["access_token"]).group(1) == str(NEW.id)
    assert TG_RE.match(body["refresh_token"]).group(1) == str(NEW.id)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 21600
    assert body["scope"] == "offline_access read write"
    assert body["user_id"] == NEW.id == 2_500_000_001_234


def test_code_is_single_use(sandbox):
    code = _authorize(sandbox, MEDIUM.id)
    assert _exchange(sandbox, code).status_code == 200

    again = _exchange(sandbox, code)

    assert again.status_code == 400
    body = again.json()
    assert body["error"] == "invalid_grant"
    assert body["status"] == 400
    assert body["cause"] == []
    assert "already used" in body["error_description"]


def test_code_exchange_without_code_verifier_is_invalid_request(sandbox):
    code = _authorize(sandbox, MEDIUM.id)

    response = _exchange(sandbox, code, code_verifier=None)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "code_verifier is a required parameter",
        "status": 400,
        "cause": [],
    }


def test_code_exchange_with_a_wrong_verifier_is_invalid_grant(sandbox):
    code = _authorize(sandbox, MEDIUM.id)

    response = _exchange(sandbox, code, code_verifier="wrong-" + "v" * 50)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_plain_pkce_challenge_is_accepted(sandbox):
    code = _authorize(sandbox, MEDIUM.id, code_challenge=VERIFIER, code_challenge_method="plain")

    assert _exchange(sandbox, code).status_code == 200


def test_code_exchange_needs_the_same_redirect_uri(sandbox):
    code = _authorize(sandbox, MEDIUM.id)

    response = _exchange(sandbox, code, redirect_uri=f"http://localhost:8000{CALLBACK_PATH}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_token_endpoint_rejects_a_json_body(sandbox):
    code = _authorize(sandbox, MEDIUM.id)
    form = {**CLIENT, "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}

    response = requests.post(
        f"{sandbox.url}/oauth/token", json={**form, "code_verifier": VERIFIER}, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    # The code was never looked at: a proper form request still works.
    assert _exchange(sandbox, code).status_code == 200


def test_token_endpoint_rejects_parameters_in_the_query_string(sandbox):
    code = _authorize(sandbox, MEDIUM.id)
    params = {**CLIENT, "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}

    response = requests.post(f"{sandbox.url}/oauth/token", params=params, timeout=TIMEOUT)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_endpoint_rejects_a_bad_client_secret(sandbox):
    code = _authorize(sandbox, MEDIUM.id)

    response = _exchange(sandbox, code, client_secret="not-the-secret")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def test_token_endpoint_rejects_unknown_grant_types(sandbox):
    response = _token(sandbox, grant_type="client_credentials")

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# --- Token endpoint: refresh ----------------------------------------------------------------------


def test_refresh_rotates_the_pair_and_the_old_refresh_token_dies(sandbox):
    first = _mint(sandbox, MEDIUM.id)

    second = _refresh(sandbox, first["refresh_token"])

    assert second.status_code == 200
    new = second.json()
    assert new["access_token"] != first["access_token"]
    assert new["refresh_token"] != first["refresh_token"]
    assert new["user_id"] == MEDIUM.id
    assert _get(sandbox, "/users/me", new["access_token"]).status_code == 200
    reused = _refresh(sandbox, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert _refresh(sandbox, new["refresh_token"]).status_code == 200


def test_only_the_latest_refresh_token_works_after_a_new_authorization(sandbox):
    older = _mint(sandbox, MEDIUM.id)
    code = _authorize(sandbox, MEDIUM.id)
    newer = _exchange(sandbox, code).json()

    assert _refresh(sandbox, older["refresh_token"]).json()["error"] == "invalid_grant"
    assert _refresh(sandbox, newer["refresh_token"]).status_code == 200


def test_another_sellers_authorization_leaves_a_refresh_token_alone(sandbox):
    mine = _mint(sandbox, MEDIUM.id)
    _mint(sandbox, BIG.id)

    assert _refresh(sandbox, mine["refresh_token"]).status_code == 200


def test_concurrent_refreshes_with_one_token_let_only_one_win(sandbox):
    refresh_token = _mint(sandbox, BIG.id)["refresh_token"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(lambda _: _refresh(sandbox, refresh_token).status_code, range(6)))

    assert statuses == [200, 400, 400, 400, 400, 400]
    assert sandbox.state.stats()["answered_invalid_grant"] == 5


def test_refresh_token_older_than_its_lifetime_is_rejected(sandbox):
    refresh_token = _mint(sandbox, MEDIUM.id)["refresh_token"]
    _control(sandbox, "config", refresh_token_ttl=0)

    assert _refresh(sandbox, refresh_token).json()["error"] == "invalid_grant"


def test_old_access_tokens_survive_a_refresh_unless_configured_otherwise(sandbox):
    first = _mint(sandbox, MEDIUM.id)
    second = _refresh(sandbox, first["refresh_token"]).json()
    assert _get(sandbox, "/users/me", first["access_token"]).status_code == 200

    _control(sandbox, "config", old_access_tokens_survive_refresh=False)
    _refresh(sandbox, second["refresh_token"])

    assert _get(sandbox, "/users/me", second["access_token"]).status_code == 401


def test_expire_ends_access_tokens_but_the_refresh_token_still_works(sandbox):
    pair = _mint(sandbox, MEDIUM.id)

    assert _control(sandbox, "expire", user_id=MEDIUM.id) == {"expired": 1}

    response = _get(sandbox, "/users/me", pair["access_token"])
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert _refresh(sandbox, pair["refresh_token"]).status_code == 200


def test_revoke_kills_every_token_of_the_user(sandbox):
    pair = _mint(sandbox, MEDIUM.id)

    _control(sandbox, "revoke", user_id=MEDIUM.id)

    assert _get(sandbox, "/users/me", pair["access_token"]).status_code == 401
    assert _refresh(sandbox, pair["refresh_token"]).json()["error"] == "invalid_grant"


def test_deleting_the_grant_revokes_the_tokens(sandbox):
    pair = _mint(sandbox, MEDIUM.id)

    response = requests.delete(
        f"{sandbox.url}/users/{MEDIUM.id}/applications/{sandbox.state.apps[SANDBOX_CLIENT_ID].app_id}",
        headers={"Authorization": f"Bearer {pair['access_token']}"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert response.json()["msg"] == "Autorización eliminada"
    assert _refresh(sandbox, pair["refresh_token"]).json()["error"] == "invalid_grant"


def test_access_token_ttl_knob_sets_expires_in(sandbox):
    _control(sandbox, "config", access_token_ttl=60)

    assert _mint(sandbox, MEDIUM.id)["expires_in"] == 60


# --- Resources ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seller", DEMO_SELLERS, ids=lambda seller: seller.nickname)
def test_resource_counts_equal_the_sellers_configured_numbers(sandbox, seller):
    token = _mint(sandbox, seller.id)["access_token"]
    now = _freeze(sandbox)

    me = _get(sandbox, "/users/me", token).json()
    items = _get(sandbox, f"/users/{seller.id}/items/search", token, status="active", limit=1).json()
    orders = _get(
        sandbox,
        "/orders/search",
        token,
        seller=seller.id,
        limit=1,
        **{"order.status": STANDING, "order.date_created.from": _orders_from(30, now)},
    ).json()
    questions = _get(
        sandbox, "/questions/search", token, seller_id=seller.id, status="UNANSWERED", api_version=4, limit=1
    ).json()
    claims = _get(
        sandbox,
        "/post-purchase/v1/claims/search",
        token,
        status="opened",
        limit=1,
        **{"players.role": "respondent", "players.user_id": seller.id},
    ).json()

    assert me["id"] == seller.id
    assert (me["nickname"], me["email"], me["site_id"]) == (seller.nickname, seller.email, seller.site_id)
    assert items["paging"]["total"] == seller.listings
    # Orders are a schedule: about `orders` standing sales in any 30 days, exactly these.
    assert orders["paging"]["total"] == _standing(seller, now)
    assert abs(_standing(seller, now) - seller.orders) <= 10 + seller.orders // 8
    assert questions["total"] == seller.questions
    assert claims["paging"]["total"] == seller.claims
    assert len(items["results"]) == min(1, seller.listings)
    assert len(orders["results"]) == min(1, seller.orders)
    assert len(questions["questions"]) == min(1, seller.questions)
    assert len(claims["data"]) == min(1, seller.claims)


def test_users_me_has_the_private_user_shape(sandbox):
    token = _mint(sandbox, BIG.id)["access_token"]

    me = _get(sandbox, "/users/me", token).json()

    for field in ("first_name", "last_name", "country_id", "registration_date", "permalink", "status"):
        assert field in me
    assert me["country_id"] == "BR"
    assert me["seller_reputation"]["level_id"] == "5_green"
    assert me["seller_reputation"]["power_seller_status"] == "platinum"
    assert me["status"]["site_status"] == "active"
    assert _get(sandbox, f"/users/{BIG.id}", token).json() == me


def test_new_seller_has_no_reputation_and_empty_searches(sandbox):
    token = _mint(sandbox, NEW.id)["access_token"]

    me = _get(sandbox, "/users/me", token).json()
    items = _get(sandbox, f"/users/{NEW.id}/items/search", token).json()

    assert me["seller_reputation"]["level_id"] is None
    assert items["paging"] == {"limit": 50, "offset": 0, "total": 0}
    assert items["results"] == []


def test_item_search_truncates_results_to_limit_but_reports_the_full_total(sandbox):
    token = _mint(sandbox, BIG.id)["access_token"]

    body = _get(sandbox, f"/users/{BIG.id}/items/search", token, status="active", limit=100, offset=20).json()

    assert body["paging"] == {"limit": 100, "offset": 20, "total": BIG.listings}
    assert len(body["results"]) == 100
    assert all(re.match(r"^MLB\d{10}$", item_id) for item_id in body["results"])
    assert len(set(body["results"])) == 100
    assert _get(sandbox, f"/users/{BIG.id}/items/search", token, limit=101).status_code == 400
    everything = _get(sandbox, f"/users/{BIG.id}/items/search", token, limit=1).json()
    assert everything["paging"]["total"] > BIG.listings  # paused and closed items too


def test_orders_date_filter_is_honoured(sandbox):
    token = _mint(sandbox, BIG.id)["access_token"]
    now = _freeze(sandbox)
    last_30_days = _standing(BIG, now)

    def total(**params):
        body = _get(sandbox, "/orders/search", token, seller=BIG.id, limit=0, **params).json()
        return body["paging"]["total"]

    assert total(**{"order.status": STANDING}) > last_30_days  # a year of them
    assert (
        total(**{"order.status": STANDING, "order.date_created.from": _orders_from(30, now)}) == last_30_days
    )
    assert (
        0
        < total(**{"order.status": STANDING, "order.date_created.from": _orders_from(10, now)})
        == _standing(BIG, now, days=10)
        < last_30_days
    )
    assert total(**{"order.date_created.from": _orders_from(-1, now)}) == 0


def test_orders_hold_mixed_statuses_and_honour_the_status_filter(sandbox):
    # A seller with a few hundred orders a month: every status shows in any 30 days.
    token = _mint(sandbox, MODA.id)["access_token"]
    now = _freeze(sandbox)
    last_30_days = {"order.date_created.from": _orders_from(30, now)}

    def search(**params):
        response = _get(sandbox, "/orders/search", token, seller=MODA.id, **last_30_days, **params)
        assert response.status_code == 200
        return response.json()

    everything = search(limit=51)
    by_status = {
        status: search(limit=0, **{"order.status": status})["paging"]["total"] for status in ALL_STATUSES
    }
    cancelled = search(limit=51, **{"order.status": "cancelled"})
    standing = _standing(MODA, now)

    # Like ML without a status filter, the search returns cancelled and invalid orders too.
    assert {order["status"] for order in everything["results"]} <= set(ALL_STATUSES)
    assert everything["paging"]["total"] == sum(by_status.values()) > standing
    assert all(by_status.values()), by_status
    # Mostly paid, a fifth as many cancelled and a twentieth invalid as standing sales.
    assert by_status["paid"] > standing / 2
    assert standing / 8 < by_status["cancelled"] < standing / 3
    assert standing / 40 < by_status["invalid"] < standing / 10
    assert sum(n for status, n in by_status.items() if status not in {"cancelled", "invalid"}) == standing
    assert search(limit=0, **{"order.status": STANDING})["paging"]["total"] == standing
    assert {order["status"] for order in cancelled["results"]} == {"cancelled"}
    assert len(cancelled["results"]) == min(51, by_status["cancelled"])
    assert search(limit=0, **{"order.status": "paid,cancelled"})["paging"]["total"] == (
        by_status["paid"] + by_status["cancelled"]
    )


def test_orders_pages_of_one_status_list_distinct_orders_by_date(sandbox):
    token = _mint(sandbox, BIG.id)["access_token"]
    now = _freeze(sandbox)  # no order may flip to another status between the two pages

    def page(offset, sort):
        return _get(
            sandbox,
            "/orders/search",
            token,
            seller=BIG.id,
            limit=50,
            offset=offset,
            sort=sort,
            **{"order.status": "paid,confirmed", "order.date_created.from": _orders_from(30, now)},
        ).json()["results"]

    for sort in ("date_asc", "date_desc"):
        orders = page(0, sort) + page(50, sort)
        dates = [order["date_created"] for order in orders]
        assert dates == sorted(dates, reverse=sort == "date_desc")
        assert len({order["id"] for order in orders}) == 100
        assert {order["status"] for order in orders} == {"paid", "confirmed"}


def test_orders_search_refuses_an_unknown_status(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    response = _get(sandbox, "/orders/search", token, seller=MEDIUM.id, **{"order.status": "paid,shipped"})

    assert response.status_code == 400
    assert "shipped" in response.json()["message"]


def test_orders_results_are_order_objects_sorted_by_date(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]
    now = _freeze(sandbox)

    body = _get(
        sandbox,
        "/orders/search",
        token,
        seller=MEDIUM.id,
        limit=5,
        **{"order.status": STANDING, "order.date_created.from": _orders_from(30, now)},
    ).json()

    assert body["paging"] == {"total": _standing(MEDIUM, now), "offset": 0, "limit": 5}
    dates = [order["date_created"] for order in body["results"]]
    assert dates == sorted(dates)
    first = body["results"][0]
    assert first["seller"]["id"] == MEDIUM.id
    assert first["status"] in STANDING.split(",")
    assert first["currency_id"] == "BRL"


def test_orders_search_needs_the_seller_filter(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    assert _get(sandbox, "/orders/search", token).status_code == 400


def test_query_string_access_token_is_rejected(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    without_header = _get(sandbox, "/users/me", access_token=token)
    with_header = _get(sandbox, "/users/me", token, access_token=token)

    assert without_header.status_code in {400, 401}
    assert with_header.status_code in {400, 401}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer APP_USR-123-010101-00000000000000000000000000000000-1", "Basic abc"]
)
def test_missing_or_unknown_tokens_get_the_ml_401_body(sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = _get(sandbox, "/users/me", headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_another_users_resources_get_the_ml_403_body(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    for path, params in [
        (f"/users/{BIG.id}", {}),
        (f"/users/{BIG.id}/items/search", {}),
        ("/orders/search", {"seller": BIG.id}),
        ("/questions/search", {"seller_id": BIG.id}),
    ]:
        response = _get(sandbox, path, token, **params)
        assert response.status_code == 403, path
        assert response.json() == FORBIDDEN


def test_claims_search_without_a_real_filter_is_invalid_query(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    response = _get(sandbox, "/post-purchase/v1/claims/search", token, limit=30, offset=0)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"


def test_claims_search_needs_players_role_and_user_id_together(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]

    response = _get(sandbox, "/post-purchase/v1/claims/search", token, **{"players.role": "respondent"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_params"


def test_sites_lists_brazil_and_argentina(sandbox):
    sites = {site["id"]: site for site in _get(sandbox, "/sites").json()}

    assert sites["MLB"]["default_currency_id"] == "BRL"
    assert sites["MLA"]["default_currency_id"] == "ARS"


# --- Knobs and stats ----------------------------------------------------------------------------


def test_injected_429_with_and_without_retry_after(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]
    _control(sandbox, "config", fail_rate_429=1.0)

    plain = _get(sandbox, "/users/me", token)
    _control(sandbox, "config", retry_after=7)
    with_header = _get(sandbox, "/users/me", token)

    assert plain.status_code == 429
    assert plain.json() == {
        "message": "Too Many Requests",
        "error": "too_many_requests",
        "status": 429,
        "cause": [],
    }
    assert "Retry-After" not in plain.headers
    assert with_header.status_code == 429
    assert with_header.headers["Retry-After"] == "7"


def test_token_endpoint_429_is_local_rate_limited(sandbox):
    refresh_token = _mint(sandbox, MEDIUM.id)["refresh_token"]
    _control(sandbox, "config", fail_rate_429=1.0)

    response = _refresh(sandbox, refresh_token)

    assert response.status_code == 429
    assert response.json()["error"] == "local_rate_limited"
    _control(sandbox, "config", fail_rate_429=0.0)
    assert _refresh(sandbox, refresh_token).status_code == 200  # the refused call burnt nothing


def test_injected_5xx(sandbox):
    token = _mint(sandbox, MEDIUM.id)["access_token"]
    _control(sandbox, "config", fail_rate_5xx=1.0)

    response = _get(sandbox, "/users/me", token)

    assert response.status_code == 503
    assert response.json()["status"] == 503
    assert sandbox.state.stats()["answered_5xx"] == 1


def test_fail_next_answers_the_listed_statuses_in_order(sandbox):
    pair = _mint(sandbox, MEDIUM.id)
    _control(sandbox, "config", fail_next=[503, 503, 429])

    statuses = [_get(sandbox, "/users/me", pair["access_token"]).status_code for _ in range(4)]

    assert statuses == [503, 503, 429, 200]
    assert requests.get(f"{sandbox.url}/_sandbox/config", timeout=TIMEOUT).json()["fail_next"] == []


def test_fail_next_does_not_touch_the_token_endpoint(sandbox):
    pair = _mint(sandbox, MEDIUM.id)
    _control(sandbox, "config", fail_next=[500])

    assert _refresh(sandbox, pair["refresh_token"]).status_code == 200
    assert _get(sandbox, "/sites").status_code == 500


def test_latency_delays_every_answer(sandbox):
    _control(sandbox, "config", latency_ms=200)

    started = time.monotonic()
    response = _get(sandbox, "/sites")
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    # At least the latency asked for; no upper bound, which only a machine's speed decides.
    assert elapsed >= 0.2


def test_rate_limit_per_second_answers_429_beyond_the_budget(sandbox):
    _control(sandbox, "config", rate_limit_per_second=5)

    statuses = [_get(sandbox, "/sites").status_code for _ in range(15)]

    assert statuses.count(200) >= 5
    assert statuses.count(429) >= 5
    assert sandbox.state.stats()["answered_429"] == statuses.count(429)


def test_config_rejects_unknown_or_invalid_knobs(sandbox):
    for body in ({"no_such_knob": 1}, {"fail_rate_429": 2}, {"fail_next": ["x"]}):
        response = requests.post(f"{sandbox.url}/_sandbox/config", json=body, timeout=TIMEOUT)
        assert response.status_code == 400, body
    assert requests.get(f"{sandbox.url}/_sandbox/config", timeout=TIMEOUT).json()["fail_rate_429"] == 0.0


def test_stats_count_requests_by_kind_and_outcome(sandbox):
    code = _authorize(sandbox, MEDIUM.id)
    _control(sandbox, "reset-stats")

    pair = _exchange(sandbox, code).json()
    _exchange(sandbox, code)  # invalid_grant: already used
    _refresh(sandbox, pair["refresh_token"])
    token = pair["access_token"]
    _get(sandbox, "/users/me", token)
    _get(sandbox, f"/users/{MEDIUM.id}/items/search", token)
    _get(sandbox, "/orders/search", token, seller=MEDIUM.id)
    _get(sandbox, "/questions/search", token, seller_id=MEDIUM.id)
    _get(sandbox, "/post-purchase/v1/claims/search", token, status="opened")
    _control(sandbox, "config", fail_next=[429, 502])
    _get(sandbox, "/users/me", token)
    _get(sandbox, "/users/me", token)

    stats = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=TIMEOUT).json()
    assert stats["total_requests"] == 10
    kinds = stats["by_kind"]
    assert (kinds["token_exchange"], kinds["token_refresh"], kinds["users_me"]) == (2, 1, 3)
    assert (kinds["items"], kinds["orders"], kinds["questions"], kinds["claims"]) == (1, 1, 1, 1)
    assert stats["answered_invalid_grant"] == 1
    assert stats["answered_429"] == 1
    assert stats["answered_5xx"] == 1
    assert requests.post(f"{sandbox.url}/_sandbox/reset-stats", timeout=TIMEOUT).json()["total_requests"] == 0


def test_concurrent_requests_all_succeed(sandbox):
    tokens = {seller.id: _mint(sandbox, seller.id)["access_token"] for seller in DEMO_SELLERS}
    _control(sandbox, "config", latency_ms=20)

    def worker(index):
        seller = DEMO_SELLERS[index % len(DEMO_SELLERS)]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {tokens[seller.id]}"
            return [
                session.get(
                    f"{sandbox.url}/users/{seller.id}/items/search", params={"limit": 1}, timeout=TIMEOUT
                ).status_code
                for _ in range(5)
            ]

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = [status for result in pool.map(worker, range(20)) for status in result]

    assert statuses == [200] * 100
    assert sandbox.state.stats()["max_in_flight"] > 1


# --- Persistence --------------------------------------------------------------------------------


def test_token_minted_into_the_state_file_works_on_a_server_started_later(tmp_path):
    state_file = tmp_path / "sandbox-state.json"

    pair = mint_into_state_file(state_file, MEDIUM.id)

    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    with start_sandbox(state_file=state_file) as sandbox:
        assert _get(sandbox, "/users/me", pair["access_token"]).json()["id"] == MEDIUM.id
        assert _refresh(sandbox, pair["refresh_token"]).status_code == 200


def test_running_server_sees_tokens_minted_into_its_file(tmp_path):
    state_file = tmp_path / "sandbox-state.json"
    with start_sandbox(state_file=state_file) as sandbox:
        served = _mint(sandbox, BIG.id)

        seeded = mint_into_state_file(state_file, MEDIUM.id)

        assert _get(sandbox, "/users/me", seeded["access_token"]).json()["id"] == MEDIUM.id
        assert _refresh(sandbox, seeded["refresh_token"]).status_code == 200
        # The seeder's write did not clobber what the server had issued.
        assert _refresh(sandbox, served["refresh_token"]).status_code == 200


def test_refreshed_pair_persists_across_a_restart(tmp_path):
    state_file = tmp_path / "sandbox-state.json"
    with start_sandbox(state_file=state_file) as first_run:
        old = _mint(first_run, MEDIUM.id)
        new = _refresh(first_run, old["refresh_token"]).json()

    with start_sandbox(state_file=state_file) as second_run:
        assert _get(second_run, "/users/me", new["access_token"]).status_code == 200
        assert _refresh(second_run, old["refresh_token"]).json()["error"] == "invalid_grant"
        assert _refresh(second_run, new["refresh_token"]).status_code == 200
    assert [path.name for path in tmp_path.iterdir() if path.name != "sandbox-state.json.lock"] == [
        "sandbox-state.json"
    ]


def test_state_without_a_file_mints_in_memory():
    state = SandboxState(access_token_ttl=120)

    pair = state.mint(MEDIUM.id)

    assert pair["expires_in"] == 120
    assert state.authenticate(pair["access_token"]) == (SANDBOX_CLIENT_ID, MEDIUM.id)
    assert state.authenticate("APP_USR-nope") is None


# --- Management command ---------------------------------------------------------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ml_sandbox_command_serves_and_stops_on_ctrl_c(tmp_path):
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    command = [
        sys.executable,
        str(manage),
        "ml_sandbox",
        "--port",
        "0",
        "--state-file",
        str(tmp_path / "s.json"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A shell starts background jobs with SIGINT ignored and children inherit that
        # (`make test &` in a script): then Ctrl-C would never reach the command. Give the
        # child the default a terminal has, which Python turns into KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    output = []
    try:
        while not any("Quit with CONTROL-C." in line for line in output):
            try:
                output.append(lines.get(timeout=30))
            except queue.Empty:
                pytest.fail("ml_sandbox did not start:\n" + "".join(output))
        url = re.search(r"sandbox on (http://\S+)", "".join(output)).group(1)
        assert requests.get(f"{url}/sites", timeout=TIMEOUT).status_code == 200

        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        reader.join(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(output) + "".join(lines.queue)
    assert process.returncode == 0, text
    assert all(seller.nickname in text for seller in DEMO_SELLERS)
    assert "Sandbox stopped." in text


def test_sandbox_is_a_leaf_that_imports_only_the_standard_library():
    # The settings import its credentials, so it must load nothing of Django or the project.
    script = (
        "import sys, accounts.mercadolivre.sandbox\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'requests', 'sync', 'mlaccounts'} or m.startswith('accounts.') "
        "and not m.startswith('accounts.mercadolivre')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
