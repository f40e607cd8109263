"""The sandbox's OAuth from a test: the app pointed at a running sandbox, and its authorization
page answered like a seller would, over real HTTP."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import requests
from django.urls import reverse

from accounts.mercadolivre import sandbox

CALLBACK = reverse("dashboard:connect_callback")


def point_at(settings, server) -> None:
    """This process's settings talk to `server` (a started sandbox) as its ML application."""
    settings.ML_API_URL = server.url
    settings.ML_AUTH_URL = server.url
    settings.ML_CLIENT_ID = sandbox.SANDBOX_CLIENT_ID
    settings.ML_CLIENT_SECRET = sandbox.SANDBOX_CLIENT_SECRET
    # The sandbox, like ML, only redirects to registered URIs (not "testserver").
    settings.ML_REDIRECT_URI = "http://127.0.0.1:8000" + CALLBACK
    settings.ML_REQUESTS_PER_SECOND = 0


def authorize(location: str, seller_id: int, decision: str = "allow") -> dict:
    """Answer the sandbox's authorization page at `location` as `seller_id`; return the query
    the callback receives."""
    page = requests.get(location, timeout=10)
    assert page.status_code == 200
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    answer = requests.post(
        urlsplit(location)._replace(query="").geturl(),
        data={**{k: unescape(v) for k, v in hidden}, "user_id": seller_id, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert back.path == CALLBACK
    return {k: v[0] for k, v in parse_qs(back.query).items()}
