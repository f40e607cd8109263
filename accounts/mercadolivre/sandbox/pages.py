"""The sandbox's HTML: ML's authorization page (§1.2) and its generic error page."""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import urlsplit

from .sellers import DemoSeller

_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;background:#ebebeb;margin:0;color:#333}
header{background:#fff159;padding:14px 24px;font-weight:700}
main{max-width:560px;margin:32px auto;background:#fff;border-radius:6px;padding:24px 32px}
h1{font-size:1.3rem}fieldset{border:0;padding:0}
li{list-style:none;padding:10px 0;border-bottom:1px solid #eee}ul{padding:0}
small{display:block;color:#666;margin-left:26px}
button{font-size:1rem;padding:10px 22px;border-radius:6px;border:0;margin-right:8px;cursor:pointer}
button[value=allow]{background:#3483fa;color:#fff}button[value=deny]{background:#e3edfb;color:#3483fa}
.error{color:#b00020}
"""

# The authorization request's fields the form posts back with the seller's decision.
_FORWARDED_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def page(title: str, body: str) -> str:
    """Wrap ``body`` in the sandbox's page chrome."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><header>Mercado Livre sandbox</header><main>{body}</main></body></html>\n"
    )


def error_page(reason: str) -> str:
    """The page ML shows for a bad redirect_uri, an unknown app and similar (§1.2)."""
    return page(
        "Mercado Livre sandbox",
        "<h1>Sorry, the application cannot connect to your account</h1>"
        f'<p class="error" id="error-reason">{html.escape(reason)}</p>',
    )


def authorization_page(params: dict[str, str], sellers: Iterable[DemoSeller]) -> str:
    """The consent page: pick a seller, then Allow or Deny (posted back to ``/authorization``)."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name], quote=True)}">'
        for name in _FORWARDED_PARAMS
        if name in params
    )
    rows = []
    for index, seller in enumerate(sellers):
        checked = " checked" if index == 0 else ""
        rows.append(
            f'<li><label><input type="radio" name="user_id" value="{seller.id}" '
            f'id="seller-{seller.id}"{checked}> {html.escape(seller.nickname)}</label>'
            f"<small>{html.escape(seller.site_id)} · {seller.listings} listings · "
            f"{seller.orders} orders (30 days) · {seller.questions} questions · "
            f"{seller.claims} claims</small></li>"
        )
    target = html.escape(urlsplit(params["redirect_uri"]).netloc)
    body = (
        "<h1>Mercado Livre sandbox</h1>"
        f"<p>The application <strong>{html.escape(params['client_id'])}</strong> "
        f"({target}) wants to read and manage your account. Choose the seller account to connect.</p>"
        f'<form method="post" action="/authorization" id="authorization-form">{hidden}'
        f"<fieldset><legend>Seller accounts</legend><ul>{''.join(rows)}</ul></fieldset>"
        '<button type="submit" name="decision" value="allow" id="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
        "</form>"
    )
    return page("Mercado Livre sandbox", body)
