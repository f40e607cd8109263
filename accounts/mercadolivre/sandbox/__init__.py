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
without a browser, activity, question statuses, the deliveries).

The seller's desk (§4.3, §4.4, §11.3): every seller's questions and claims are objects, built
lazily from its sizes (a seller with 10 000 questions builds only the pages asked for) and
changed by activity (``questions``/``claims`` with a positive change create new UNANSWERED
questions or opened claims, a negative one answers or closes the oldest; at most 10 000 a
call) and by the app. The seller's ``questions`` and ``claims`` sizes are always the counts
of UNANSWERED questions and opened claims. Routes (stats kind in brackets):

- ``GET /questions/search`` [questions]: ``seller_id``, ``status``, ``offset``, ``limit``
  (≤ 100), ``sort_fields=date_created`` with ``sort_types=ASC|DESC`` (newest first by
  default; other sort fields → 400); top-level ``total``, answered ones included when
  ``status`` is absent;
- ``GET /questions/{id}`` [questions_get]: the question; 404 ``not_found`` if unknown, 403
  ``forbidden`` if another seller's;
- ``POST /answers`` [answers] ``{"question_id", "text"}`` (JSON only): 200 with the question
  ANSWERED and ``answer: {text, status: ACTIVE, date_created}``, and a ``questions``
  notification. Refusals: not a JSON object → 400 ``bad_request``; bad ``question_id`` or a
  ``text`` blank or over 2000 characters → 400 ``validation_error``; 404 / 403 as above; a
  question that no longer waits (answered, deleted, banned, closed) → 400
  ``not_unanswered_question``, "Question <id> is already answered." (or "was deleted.",
  "was banned.", "was closed without an answer.");
- ``GET /items?ids=A,B`` [items_get] (≤ 20, more → 400 ``bad_request``; ``attributes``
  honoured): ``[{code: 200, body: {id, title, permalink, …}}]``, ``{code: 404, body: error}``
  for an unknown id; any token of the app reads any seller's items;
- ``GET /post-purchase/v1/claims/search`` [claims] (``sort=date_created:asc|desc``),
  ``…/claims/{id}`` and ``…/claims/{id}/detail`` [claims_get]: the claim, and its
  ``{due_date, action_responsible, title, description, problem}`` (both null once closed);
  404 ``not_found``, 403 ``forbidden_error`` for another seller's;
- ``POST /_sandbox/question-status`` ``{"question_id", "status": "DELETED"|"BANNED"|
  "CLOSED_UNANSWERED"}``: takes a question out of the unanswered count (and notifies).

Sales (§4.2, §11.2): every seller's orders sit at fixed moments in absolute time, each with a
status history (paid some minutes after creation, some cancelled or refunded later), so a
re-read shows what changed and nothing moves as the hours pass (``orders``).
``GET /orders/search`` [orders] filters by creation and last-update date (cut to the hour,
like ML), status, and sorts by creation date; ``GET /orders/{id}`` reads one. The seller's
``seller_reputation`` (``/users/me``, ``/users/{own id}``) moves from day to day; one demo
seller is under protection.

It is a leaf: standard library only, nothing from Django or the rest of the project, so the
``ml_sandbox`` command, the settings, the tests, the seeding command and a benchmark can all
use it. By concern:

- ``sellers``: the app's credentials and callback path, the demo sellers and their data;
- ``knobs``: the behaviour switches; ``state``: codes, tokens, stats, the state file and the
  sellers' activity;
- ``order_schedule``: every seller's orders in time and their histories; ``orders``: their
  searches, the activity's orders and the §4.2 order objects;
- ``books``: question and claim records and each seller's lazily built book of them;
  ``desk``: every seller's books, activity on them, answers and status changes;
- ``notifications``: notification bodies, the postman that delivers and retries them, the
  activity ticker and the missed feeds;
- ``errors``: ML's error bodies; ``pages``: the HTML pages;
- ``handler``: request plumbing and the ``/_sandbox/*`` controls; ``oauth_routes``,
  ``resource_routes`` and ``desk_routes``: the two ML hosts; ``server``: the HTTP server and
  how to start it.
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
