"""Who the sandbox knows and what their searches hold: the app, the demo sellers, their data.

The app's credentials and callback path are the one definition the settings, the tests and
the sandbox's own checks import. Seller data is generated from a few sizes per seller,
deterministically, so a count the app shows can be compared with the seller's numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

# The sandbox app's public demo credentials: the settings use them when no real
# application is configured, so they are defined here and nowhere else.
SANDBOX_CLIENT_ID = "sandbox-app"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's public demo secret
# The app's OAuth callback route (mlaccounts/urls.py mounts it here). The sandbox app accepts
# as registered redirect URI any local or HTTPS URI whose path ends with it.
CALLBACK_PATH = "/ml-accounts/connect/callback/"

# ML answers in the seller's local time with millis and an offset (§0).
_LOCAL_TZ = timezone(timedelta(hours=-3))
_DAY = 86400


@dataclass(frozen=True)
class SandboxApp:
    """A registered application: credentials, its numeric APP ID, and the PKCE toggle (§1.1)."""

    client_id: str
    client_secret: str
    app_id: int
    pkce: bool = True


SANDBOX_APP = SandboxApp(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, app_id=5503910054141466)


@dataclass(frozen=True)
class DemoSeller:
    """A seller the sandbox knows, with the sizes its searches report.

    ``listings`` are active listings, ``orders`` the sales of the last 30 days that were
    not cancelled (paid, confirmed, awaiting payment...: every status but ``cancelled``
    and ``invalid``), ``questions`` unanswered questions and ``claims`` open claims. Every
    search also has data outside those filters, so a client that forgets a filter sees a
    different number: listings/8 paused and listings/4 closed items; besides the orders,
    about orders/5 cancelled and orders/20 invalid ones in the same 30 days and orders/2
    sales (with their own cancelled and invalid ones) 32–90 days old; 3×questions
    answered questions and 3×claims closed claims. Questions and claims are the starting
    population of the seller's desk (``desk``), whose objects activity and answers change.
    """

    id: int
    nickname: str
    email: str
    first_name: str
    last_name: str
    site_id: str
    listings: int
    orders: int
    questions: int
    claims: int
    registration_date: str = "2019-05-14T10:21:07.000-03:00"


# Newer ML accounts have ids above 2^32 (§0), hence the new seller's id.
DEMO_SELLERS: list[DemoSeller] = [
    DemoSeller(
        241500733,
        "CASA_DA_ANA",
        "test_user_241500733@testuser.com",
        "Ana",
        "Ribeiro",
        "MLB",
        listings=37,
        orders=58,
        questions=4,
        claims=1,
        registration_date="2017-03-02T09:12:44.000-03:00",
    ),
    DemoSeller(
        88221144,
        "MEGASTORE_BR",
        "test_user_88221144@testuser.com",
        "Marcos",
        "Oliveira",
        "MLB",
        listings=4820,
        orders=12640,
        questions=213,
        claims=27,
        registration_date="2011-08-19T14:03:10.000-03:00",
    ),
    DemoSeller(
        2_500_000_001_234,
        "LOJA_NOVA_TESTE",
        "test_user_2500000001234@testuser.com",
        "Beatriz",
        "Souza",
        "MLB",
        listings=0,
        orders=0,
        questions=0,
        claims=0,
        registration_date="2026-01-05T16:40:00.000-03:00",
    ),
    DemoSeller(
        1423876650,
        "MODA_PAULISTA",
        "test_user_1423876650@testuser.com",
        "Carla",
        "Mendes",
        "MLB",
        listings=146,
        orders=312,
        questions=11,
        claims=2,
        registration_date="2020-10-11T11:30:00.000-03:00",
    ),
    DemoSeller(
        312987456,
        "TECNO_BAIRES",
        "test_user_312987456@testuser.com",
        "Julián",
        "Fernández",
        "MLA",
        listings=512,
        orders=930,
        questions=18,
        claims=3,
        registration_date="2018-02-27T08:05:51.000-03:00",
    ),
    DemoSeller(
        1130456789,
        "GIGA_OUTLET",
        "test_user_1130456789@testuser.com",
        "Rafael",
        "Costa",
        "MLB",
        listings=1250,
        orders=2104,
        questions=57,
        claims=9,
        registration_date="2019-06-30T19:45:02.000-03:00",
    ),
]


def synthetic_seller(user_id: int) -> DemoSeller:
    """Return a deterministic made-up seller for an id that is not a demo seller.

    Lets a benchmark or seeding command mint tokens for hundreds of accounts; the
    authorization page only offers ``DEMO_SELLERS``.
    """
    digest = int.from_bytes(hashlib.sha256(str(user_id).encode()).digest()[:8], "big")
    return DemoSeller(
        user_id,
        f"SANDBOX_{user_id}",
        f"test_user_{user_id}@testuser.com",
        "Sandbox",
        f"Seller {user_id}",
        "MLB",
        listings=digest % 600,
        orders=(digest >> 12) % 900,
        questions=(digest >> 24) % 40,
        claims=(digest >> 32) % 6,
    )


SITES = [
    {"default_currency_id": "ARS", "id": "MLA", "name": "Argentina"},
    {"default_currency_id": "BRL", "id": "MLB", "name": "Brasil"},
    {"default_currency_id": "MXN", "id": "MLM", "name": "Mexico"},
    {"default_currency_id": "COP", "id": "MCO", "name": "Colombia"},
    {"default_currency_id": "CLP", "id": "MLC", "name": "Chile"},
    {"default_currency_id": "UYU", "id": "MLU", "name": "Uruguay"},
]
CURRENCY = {site["id"]: site["default_currency_id"] for site in SITES}
_COUNTRY = {"MLA": "AR", "MLB": "BR", "MLM": "MX", "MCO": "CO", "MLC": "CL", "MLU": "UY"}
_PROFILE_HOST = {"MLB": "perfil.mercadolivre.com.br"}
_DEFAULT_PROFILE_HOST = "perfil.mercadolibre.com.ar"


# --- Generated seller data ---------------------------------------------------------------------


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=_LOCAL_TZ).isoformat(timespec="milliseconds")


def item_id(seller: DemoSeller, number: int, index: int) -> str:
    """Item id like ``MLB4010000012``: site prefix + digits (§0); active items come first."""
    return f"{seller.site_id}{4_000_000_000 + number * 10_000_000 + index}"


def item_counts(seller: DemoSeller) -> dict[str, int]:
    return {"active": seller.listings, "paused": seller.listings // 8, "closed": seller.listings // 4}


_ITEM_HOST = {"MLB": "produto.mercadolivre.com.br"}
_DEFAULT_ITEM_HOST = "articulo.mercadolibre.com.ar"


def item_title(index: int) -> str:
    """The title of the seller's item ``index``: the same wherever the item shows (orders, items)."""
    return f"Produto de teste {index + 1}"


def item_body(seller: DemoSeller, number: int, index: int) -> dict[str, Any] | None:
    """The item ``index`` of the seller as ``GET /items?ids=`` shows it, None if there is none.

    Statuses follow ``item_counts``: the active items first, then the paused, then the closed.
    """
    counts = item_counts(seller)
    if not 0 <= index < sum(counts.values()):
        return None
    if index < counts["active"]:
        status = "active"
    else:
        status = "paused" if index < counts["active"] + counts["paused"] else "closed"
    identifier = item_id(seller, number, index)
    digits = identifier.removeprefix(seller.site_id)
    title = item_title(index)
    host = _ITEM_HOST.get(seller.site_id, _DEFAULT_ITEM_HOST)
    return {
        "id": identifier,
        "title": title,
        "permalink": f"https://{host}/{seller.site_id}-{digits}-{title.lower().replace(' ', '-')}-_JM",
        "thumbnail": f"http://http2.mlstatic.com/D_{digits}-I.jpg",
        "secure_thumbnail": f"https://http2.mlstatic.com/D_{digits}-I.jpg",
        "seller_id": seller.id,
        "site_id": seller.site_id,
        "status": status,
        "price": round(19.9 + (index * 37) % 480, 2),
        "currency_id": CURRENCY.get(seller.site_id, "BRL"),
    }


# §4.2's order statuses. A cancelled sale ends `cancelled`, and ML voids the orders of
# fraudulent buyers as `invalid`; every other status is a sale that stands.
ORDER_STATUSES = (
    "confirmed",
    "payment_required",
    "payment_in_process",
    "partially_paid",
    "paid",
    "partially_refunded",
    "pending_cancel",
    "cancelled",
    "invalid",
)
# The statuses of a seller's standing sales, in turn: mostly paid, some in every other state.
_STANDING_STATUSES = (
    "paid",
    "paid",
    "confirmed",
    "paid",
    "paid",
    "paid",
    "payment_in_process",
    "paid",
    "paid",
    "partially_refunded",
    "paid",
    "paid",
    "confirmed",
    "paid",
    "payment_required",
    "paid",
    "paid",
    "pending_cancel",
    "paid",
    "partially_paid",
)


@dataclass(frozen=True)
class OrderBook:
    """A seller's orders, newest first: ``ages`` (seconds before the current hour) and ``statuses``.

    ``by_status`` lists, per status, the positions of its orders in ascending order, so a
    search can count and page one status without walking the others.
    """

    ages: tuple[float, ...]
    statuses: tuple[str, ...]
    by_status: dict[str, tuple[int, ...]]


def _spread(count: int, start: float, span: float, shift: float) -> list[float]:
    return [start + (i + shift) * (span / count) for i in range(count)]


@lru_cache(maxsize=256)
def order_book(recent: int, older: int) -> OrderBook:
    """The orders of a seller with ``recent`` standing sales in the last 30 days (§4.2).

    The last-30-days orders sit within 29 days and the older ones (``older`` standing
    sales) beyond 32 days, so a 30-day window matches exactly even after ML truncates the
    date filter to the hour (§4.2) or a client rounds it to midnight. Each window also
    holds cancelled orders (a fifth as many, rounded up) and invalid ones (a twentieth),
    so a count that does not filter by status comes out larger.
    """
    orders: list[tuple[float, str]] = []
    for standing, start, span in ((recent, 0.0, 29.0 * _DAY), (older, 32.0 * _DAY, 58.0 * _DAY)):
        ages = _spread(standing, start, span, 0.5)
        orders += [(age, _STANDING_STATUSES[k % len(_STANDING_STATUSES)]) for k, age in enumerate(ages)]
        orders += [(age, "cancelled") for age in _spread((standing + 4) // 5, start, span, 0.25)]
        orders += [(age, "invalid") for age in _spread((standing + 19) // 20, start, span, 0.75)]
    orders.sort()
    statuses = tuple(status for _, status in orders)
    return OrderBook(
        ages=tuple(age for age, _ in orders),
        statuses=statuses,
        by_status={
            name: tuple(i for i, status in enumerate(statuses) if status == name) for name in ORDER_STATUSES
        },
    )


def private_user(seller: DemoSeller) -> dict[str, Any]:
    """The §3 private shape of ``/users/me``, abridged."""
    country = _COUNTRY.get(seller.site_id, "BR")
    if seller.orders >= 5000:
        level, power = "5_green", "platinum"
    elif seller.orders >= 1000:
        level, power = "5_green", "gold"
    elif seller.orders >= 100:
        level, power = "4_light_green", None
    elif seller.orders > 0:
        level, power = "3_yellow", None
    else:
        level, power = None, None  # new sellers have no reputation yet
    total = seller.orders * 6
    completed = total - total // 12
    claims_rate = round(seller.claims / seller.orders, 4) if seller.orders else 0.0
    return {
        "id": seller.id,
        "nickname": seller.nickname,
        "registration_date": seller.registration_date,
        "first_name": seller.first_name,
        "last_name": seller.last_name,
        "gender": "",
        "country_id": country,
        "email": seller.email,
        "identification": {"type": "CPF" if country == "BR" else "DNI", "number": str(seller.id)[-8:]},
        "address": {
            "state": f"{country}-SP" if country == "BR" else f"{country}-C",
            "city": "",
            "address": "",
        },
        "phone": {"area_code": "11", "number": "5555-0100", "extension": "", "verified": False},
        "user_type": "normal",
        "tags": ["normal", "test_user", "user_info_verified"],
        "logo": None,
        "points": 100,
        "site_id": seller.site_id,
        "permalink": f"http://{_PROFILE_HOST.get(seller.site_id, _DEFAULT_PROFILE_HOST)}/{seller.nickname}",
        "seller_experience": "ADVANCED" if seller.orders >= 100 else "NEWBIE",
        "seller_reputation": {
            "level_id": level,
            "power_seller_status": power,
            "transactions": {
                "period": "historic",
                "total": total,
                "completed": completed,
                "canceled": total - completed,
                "ratings": {"positive": 0.92, "negative": 0.03, "neutral": 0.05}
                if total
                else {"positive": 0, "negative": 0, "neutral": 0},
            },
            "metrics": {
                "sales": {"period": "60 days", "completed": seller.orders * 2},
                "claims": {"period": "60 days", "rate": claims_rate, "value": seller.claims},
                "delayed_handling_time": {"period": "60 days", "rate": 0.0, "value": 0},
                "cancellations": {"period": "60 days", "rate": 0.0, "value": 0},
            },
        },
        "status": {
            "site_status": "active",
            "list": {"allow": True, "codes": [], "immediate_payment": {"required": False, "reasons": []}},
            "confirmed_email": True,
            "user_type": "normal",
            "required_action": "",
        },
    }


# The ids the sandbox gives buyers (the `from` of questions, the complainant of claims, the
# `buyer` of orders): 100_000_000 + something below 899_999_999.
BUYER_IDS = range(100_000_000, 1_000_000_000)


def public_user(user_id: int, site_id: str) -> dict[str, Any]:
    """The public profile ``GET /users/{id}`` shows of a buyer to any seller's token (§3 notes).

    Derived from the id alone (the nickname, the registration date), so a buyer reads the
    same on every call; ``site_id`` is the asking seller's, where the buyer shopped.
    """
    nickname = f"COMPRADOR{user_id % 100000:05d}"
    country = _COUNTRY.get(site_id, "BR")
    registered = datetime(2012, 1, 1, 10, tzinfo=_LOCAL_TZ) + timedelta(
        days=user_id % 4000, minutes=user_id % 600
    )
    return {
        "id": user_id,
        "nickname": nickname,
        "registration_date": registered.isoformat(timespec="milliseconds"),
        "country_id": country,
        "address": {"city": "", "state": f"{country}-SP" if country == "BR" else f"{country}-C"},
        "user_type": "normal",
        "tags": ["normal"],
        "logo": None,
        "points": user_id % 500,
        "site_id": site_id,
        "permalink": f"http://{_PROFILE_HOST.get(site_id, _DEFAULT_PROFILE_HOST)}/{nickname}",
        "seller_reputation": {
            "level_id": None,
            "power_seller_status": None,
            "transactions": {
                "period": "historic",
                "total": 0,
                "completed": 0,
                "canceled": 0,
                "ratings": {"positive": 0, "negative": 0, "neutral": 0},
            },
        },
        "buyer_reputation": {"tags": []},
        "status": {"site_status": "active"},
    }
