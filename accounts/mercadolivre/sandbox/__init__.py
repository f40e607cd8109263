"""The bundled sandbox: a local fake of the Mercado Livre API, served over real HTTP.

Mercado Livre has no sandbox of its own (mercadolivre-api.md §7), so this package plays both
ML hosts on one port: the browser authorization page (``/authorization``) and the REST API
(``/oauth/token``, ``/users/me``, the counting searches of §4). It reproduces the quirks the
app must survive (§9): single-use rotating refresh tokens where only the latest one works,
PKCE, form-only token requests, Bearer-only resource calls, ML's odd error bodies, and
injectable 429s, 5xx and latency. It also plays ML's webhook emitter (§6, §9 item 5): seller
activity (``/_sandbox/activity`` or a timer) moves the numbers the searches report and POSTs
notifications to the app in ML's mixed shapes, retries failures and keeps the missed ones for
``/missed_feeds``. ``/_sandbox/*`` holds the test controls (knobs, stats, minting tokens
without a browser, activity, the deliveries).

It is a leaf: standard library only, nothing from Django or the rest of the project, so the
``ml_sandbox`` command, the settings, the tests, the seeding command and a benchmark can all
use it. By concern:

- ``sellers``: the app's credentials and callback path, the demo sellers and their data;
- ``knobs``: the behaviour switches; ``state``: codes, tokens, stats, the state file and the
  sellers' activity;
- ``notifications``: notification bodies, the postman that delivers and retries them, the
  activity ticker and the missed feeds;
- ``errors``: ML's error bodies; ``pages``: the HTML pages;
- ``handler``: request plumbing and the ``/_sandbox/*`` controls; ``oauth_routes`` and
  ``resource_routes``: the two ML hosts; ``server``: the HTTP server and how to start it.
"""

from .errors import SandboxOAuthError
from .knobs import SandboxKnobs
from .notifications import Notifier
from .sellers import (
    CALLBACK_PATH,
    DEMO_SELLERS,
    SANDBOX_APP,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    DemoSeller,
    SandboxApp,
    synthetic_seller,
)
from .server import SandboxServer, serve_forever, start_sandbox
from .state import SandboxState, mint_into_state_file

__all__ = [
    "CALLBACK_PATH",
    "DEMO_SELLERS",
    "SANDBOX_APP",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "DemoSeller",
    "Notifier",
    "SandboxApp",
    "SandboxKnobs",
    "SandboxOAuthError",
    "SandboxServer",
    "SandboxState",
    "mint_into_state_file",
    "serve_forever",
    "start_sandbox",
    "synthetic_seller",
]
