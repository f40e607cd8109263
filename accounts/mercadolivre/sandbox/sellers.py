"""Who the sandbox knows and what their searches hold: the app, the demo sellers, their data.

The app's credentials and callback path are the one definition the settings, the tests and
the sandbox's own checks import. Seller data is generated from a few sizes per seller,
deterministically, so a count the app shows can be compared with the seller's numbers:
listings, questions and claims are counts, orders a schedule in absolute time (``orders``,
``standing_orders``) and the reputation a function of the seller and the day
(``seller_reputation``).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
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

    ``listings`` are active listings, ``questions`` unanswered questions and ``claims`` open
    claims. ``orders`` is the seller's *volume*: about that many sales that stand (paid,
    confirmed, awaiting payment...: every status but ``cancelled`` and ``invalid``) in any
    30 days. The orders themselves are a fixed schedule in absolute time (``orders``
    module): the exact count of a window is ``standing_orders``, and with it about
    orders/5 cancelled and orders/20 invalid ones, every day of the last ~13 months. Every
    search also has data outside its filters, so a client that forgets a filter sees a
    different number: listings/8 paused and listings/4 closed items; 3×questions answered
    questions and 3×claims closed claims. Questions and claims are the starting population
    of the seller's desk (``desk``), whose objects activity and answers change.
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


# Prices are made in reais and converted, roughly, so that every site's amounts look local.
_PRICE_FACTOR = {"MLB": 1, "MLA": 250, "MLM": 3.5, "MCO": 800, "MLC": 180, "MLU": 8}


def item_price(seller: DemoSeller, index: int) -> float:
    """The price of the seller's item ``index`` in its site's currency (orders sell at it too)."""
    return round((19.9 + (index * 37) % 480) * _PRICE_FACTOR.get(seller.site_id, 1), 2)


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
        "price": item_price(seller, index),
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
# The statuses of the sales a seller's ``orders`` counts: every one but cancelled and invalid.
STANDING_STATUSES = tuple(status for status in ORDER_STATUSES if status not in {"cancelled", "invalid"})


def standing_orders(
    seller: DemoSeller, since: float | datetime | None = None, now: float | None = None
) -> int:
    """How many standing sales of ``seller``'s schedule were created since ``since``, at ``now``.

    What ``GET /orders/search`` with ``order.status`` = ``STANDING_STATUSES`` and
    ``order.date_created.from`` = ``since`` reports for a seller without activity orders
    (``SandboxState.standing_orders`` adds those): ``since`` (epoch seconds or an aware
    datetime; default ``now`` − 30 days) is truncated to the hour as ML does (§4.2), ``now``
    defaults to the current time. Pass the sandbox's clock (``SandboxState.now()``) to match
    a running sandbox exactly.
    """
    from .orders import SellerOrders, to_ms  # the orders module builds on this one

    now_ms = to_ms(time.time() if now is None else now)
    return SellerOrders(seller, 0, now_ms).standing(None if since is None else to_ms(since))


# --- Reputation (§3, §11.2) ------------------------------------------------------------------------

# The sandbox's level limits per metric (ML publishes them per site): a rate below the first
# is green, below the second light green, then yellow, orange, and red beyond the last.
REPUTATION_LIMITS = {
    "claims": (0.03, 0.05, 0.07, 0.10),
    "delayed_handling_time": (0.10, 0.15, 0.20, 0.25),
    "cancellations": (0.025, 0.04, 0.06, 0.08),
}
LEVEL_IDS = ("1_red", "2_orange", "3_yellow", "4_light_green", "5_green")
# MercadoLíder (power_seller_status) by volume (standing sales in 30 days), for green sellers.
POWER_SELLER_VOLUMES = (("platinum", 5000), ("gold", 1500), ("silver", 300))
# While protected, ML leaves this share of the seller's real claims, delays and cancellations
# out of the visible metrics (`excluded` shows the real ones).
PROTECTED_SHARE_EXCLUDED = 0.75


@dataclass(frozen=True)
class ReputationProfile:
    """The rates a seller's reputation drifts around (real rates for a protected seller).

    Each day a rate is ``rate × (1 + swing × wave + swing/4 × noise)``: ``wave`` a slow sine
    (periods of 37, 43 and 53 days) and ``noise`` hash noise interpolated over 6-day knots,
    so rates change a little every day and a lot over weeks.
    """

    claims: float
    delayed_handling_time: float
    cancellations: float
    swing: float = 0.3
    protected: bool = False


# The demo sellers' profiles: MEGASTORE_BR stays green; MODA_PAULISTA's claims cross the green
# limit (3 %) now and then; GIGA_OUTLET's come close to it (up to about 2.96 %) and never pass;
# TECNO_BAIRES is under protection: green to the world, yellow for real.
REPUTATION_PROFILES = {
    241500733: ReputationProfile(0.017, 0.05, 0.012),
    88221144: ReputationProfile(0.006, 0.025, 0.004),
    1423876650: ReputationProfile(0.033, 0.07, 0.015),
    312987456: ReputationProfile(0.06, 0.12, 0.03, swing=0.1, protected=True),
    1130456789: ReputationProfile(0.0255, 0.04, 0.01, swing=0.13),
}
_METRIC_PERIODS = {"claims": 37, "delayed_handling_time": 43, "cancellations": 53}


def _hash_unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:7], "big") / 2**56


def reputation_profile(seller: DemoSeller) -> ReputationProfile:
    """The seller's profile: a demo seller's from ``REPUTATION_PROFILES``, else one from its id."""
    profile = REPUTATION_PROFILES.get(seller.id)
    if profile is not None:
        return profile
    return ReputationProfile(
        claims=0.005 + 0.025 * _hash_unit(seller.id, "claims"),
        delayed_handling_time=0.02 + 0.07 * _hash_unit(seller.id, "delayed"),
        cancellations=0.003 + 0.017 * _hash_unit(seller.id, "cancellations"),
    )


def _drift(seller_id: int, metric: str, day: int, swing: float) -> float:
    """The factor a rate is multiplied by on ``day`` (days since 1970-01-01): smooth, about 1."""
    period = _METRIC_PERIODS.get(metric, 41)
    wave = math.sin(2 * math.pi * (day + _hash_unit(seller_id, metric, "phase") * period) / period)
    knot, within = divmod(day, 6)
    start, stop = (2 * _hash_unit(seller_id, metric, k) - 1 for k in (knot, knot + 1))
    noise = start + (stop - start) * within / 6
    return 1 + swing * wave + swing / 4 * noise


def _level(rates: dict[str, float]) -> int:
    """1 (red) .. 5 (green): the worst level any metric's rate reaches."""
    levels = [5 - sum(rate >= limit for limit in REPUTATION_LIMITS[name]) for name, rate in rates.items()]
    return min(levels)


def seller_reputation(seller: DemoSeller, day: date) -> dict[str, Any]:
    """The ``seller_reputation`` of ``seller`` on ``day`` (its São Paulo date): pure and cheap.

    ``metrics.sales.completed`` follows the seller's volume (``orders`` × 2 over 60 days; over
    365 days when that is under 60 sales, as ML does on MLB); each of ``claims``,
    ``delayed_handling_time`` and ``cancellations`` has ``value`` = its rate × those sales
    (``reputation_profile``, drifting by day) and ``rate`` = value / sales. ``level_id`` is
    the worst level of the three rates by ``REPUTATION_LIMITS``, ``power_seller_status`` the
    volume's (``POWER_SELLER_VOLUMES``) when green. A protected seller shows the metrics
    without ``PROTECTED_SHARE_EXCLUDED`` of its events, each with ``excluded: {real_value,
    real_rate}``, plus ``real_level`` (the colour of the real rates) and
    ``protection_end_date`` (the end of the current four-week cycle plus two weeks: 2 to 6
    weeks ahead). Sellers without orders have no level and zero metrics.
    """
    number = day.toordinal() - date(1970, 1, 1).toordinal()
    total = seller.orders * 6
    completed_total = total - total // 12
    transactions = {
        "period": "historic",
        "total": total,
        "completed": completed_total,
        "canceled": total - completed_total,
        "ratings": {"positive": 0.92, "negative": 0.03, "neutral": 0.05}
        if total
        else {"positive": 0, "negative": 0, "neutral": 0},
    }
    sales = round(2 * seller.orders * (1 + 0.05 * math.sin(2 * math.pi * number / 29)))
    period = "60 days"
    if sales < 60:
        period, sales = (
            "365 days",
            round(12 * seller.orders * (1 + 0.02 * math.sin(2 * math.pi * number / 29))),
        )
    metrics: dict[str, Any] = {"sales": {"period": period, "completed": sales}}
    if not seller.orders:
        for name in REPUTATION_LIMITS:
            metrics[name] = {"period": period, "rate": 0.0, "value": 0}
        return {
            "level_id": None,
            "power_seller_status": None,
            "transactions": transactions,
            "metrics": metrics,
        }
    profile = reputation_profile(seller)
    shown, real = {}, {}
    for name in REPUTATION_LIMITS:
        rate = getattr(profile, name) * _drift(seller.id, name, number, profile.swing)
        real_value = round(rate * sales)
        value = real_value - round(real_value * PROTECTED_SHARE_EXCLUDED) if profile.protected else real_value
        shown[name], real[name] = round(value / sales, 4), round(real_value / sales, 4)
        metrics[name] = {"period": period, "rate": shown[name], "value": value}
        if profile.protected:
            metrics[name]["excluded"] = {"real_value": real_value, "real_rate": real[name]}
    level = _level(shown)
    power = None
    if level == 5:
        power = next((name for name, volume in POWER_SELLER_VOLUMES if seller.orders >= volume), None)
    reputation: dict[str, Any] = {
        "level_id": LEVEL_IDS[level - 1],
        "power_seller_status": power,
        "transactions": transactions,
        "metrics": metrics,
    }
    if profile.protected:
        reputation["real_level"] = LEVEL_IDS[_level(real) - 1].split("_", 1)[1]
        end = date.fromordinal(date(1970, 1, 1).toordinal() + number // 28 * 28 + 42)
        reputation["protection_end_date"] = f"{end.isoformat()}T00:00:00.000-03:00"
    return reputation


def local_date(now: float) -> date:
    """The São Paulo date at the instant ``now`` (epoch seconds): the reputation's day."""
    return datetime.fromtimestamp(now, tz=_LOCAL_TZ).date()


def private_user(seller: DemoSeller, now: float | None = None) -> dict[str, Any]:
    """The §3 private shape of ``/users/me``, abridged; the reputation is ``now``'s (default: the
    current time). ``seller`` is the seller as configured: its volume drives the reputation."""
    country = _COUNTRY.get(seller.site_id, "BR")
    reputation = seller_reputation(seller, local_date(time.time() if now is None else now))
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
        "seller_reputation": reputation,
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
