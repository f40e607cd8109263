"""The one way this project talks HTTP to Mercado Livre.

Every call goes through ``request_json``: it takes a token from the shared rate budget,
always sets a timeout, sends the access token only as ``Authorization: Bearer`` (§2),
maps failures to the typed errors of ``errors.py`` and never logs a token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from importlib import metadata
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from prometheus_client import Counter
from requests.adapters import HTTPAdapter
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from . import deadline, ratelimit
from .errors import MLBadResponse, MLRateLimited, MLUnavailable, error_from_response

logger = logging.getLogger(__name__)

try:
    _VERSION = metadata.version("mlaccounts")
except metadata.PackageNotFoundError:
    _VERSION = "0.1.0"  # the project is not pip-installed in development; see pyproject.toml
USER_AGENT = f"MLAccounts/{_VERSION} (+self-hosted)"

# ML answers 5xx now and then under load; retrying a GET is harmless and usually works.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_TOTAL = 2
RETRY_BACKOFF = 0.3


# --- Call counting -----------------------------------------------------------------------------

_calls: ContextVar[int] = ContextVar("ml_calls", default=0)
_retry_budget: ContextVar[bool] = ContextVar("ml_retry_budget", default=False)


def _count_attempt() -> None:
    _calls.set(_calls.get() + 1)


# Every HTTP attempt, as ML sees it: a GET retried by urllib3 counts each try with its own status.
ML_REQUESTS = Counter(
    "mlaccounts_ml_requests",
    "HTTP requests to Mercado Livre (every attempt, GET retries included) by method, endpoint "
    "template and status: the HTTP status, or timeout / error when no answer came.",
    ["method", "endpoint", "status"],
)


def _is_id(segment: str) -> bool:
    # Numbers (users, orders, questions, claims), ML ids (MLB1054990648) and anything long;
    # `v1` and `me` are words of the API, so /users/me stays itself.
    return sum(char.isdigit() for char in segment) >= 3 or len(segment) > 40


def endpoint_template(path: str) -> str:
    """`path` with its ids replaced by `{id}`, a label of bounded cardinality.

    /users/123/items/search -> /users/{id}/items/search; /items/MLB1054990648 -> /items/{id}.
    """
    return "/".join("{id}" if _is_id(segment) else segment for segment in path.split("/"))


def _record(method: str, path: str, status: str) -> None:
    ML_REQUESTS.labels(method, endpoint_template(path), status).inc()


def _failure_status(exc: Exception) -> str:
    # urllib3 wraps a read timeout it gave up retrying in MaxRetryError, which requests
    # raises as a ConnectionError: the reason says what happened.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return "timeout" if isinstance(reason, Urllib3Timeout) else "error"


def calls_made() -> int:
    """Return how many HTTP attempts to ML this context (thread or task) has made."""
    return _calls.get()


class CallCounter:
    """The number of ML calls made inside a ``count_calls()`` block (live, then frozen)."""

    def __init__(self) -> None:
        self._start = calls_made()
        self._final: int | None = None

    @property
    def count(self) -> int:
        if self._final is not None:
            return self._final
        return calls_made() - self._start

    def _freeze(self) -> None:
        self._final = calls_made() - self._start


@contextlib.contextmanager
def count_calls() -> Iterator[CallCounter]:
    """Count the ML calls made in the block, e.g. to log "ML calls made" after a sync."""
    counter = CallCounter()
    try:
        yield counter
    finally:
        counter._freeze()


# --- Session ---------------------------------------------------------------------------------


def _time_for_a_retry() -> bool:
    """Whether a whole retry (its back-off and full timeouts) fits before the caller's deadline.

    urllib3 reuses the first attempt's timeouts for a retry, so under a short deadline (a
    web request's) a retry would run past it: there the first failure is the answer. A
    worker's sync has a long deadline and keeps its retries.
    """
    left = deadline.time_left()
    if left is None:
        return True
    return left > float(settings.ML_CONNECT_TIMEOUT) + float(settings.ML_READ_TIMEOUT) + 1.0


class _GetOnlyRetry(Retry):
    """urllib3 retries that never replay anything but a GET, and nothing under a deadline.

    Stock urllib3 retries connection errors for every method. A token POST must never be
    replayed: refresh tokens are single-use (§1.5), so a replay after a lost response
    would burn the new token and leave us with a dead one.
    """

    def increment(
        self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any
    ) -> Retry:
        if method is None or method.upper() not in (self.allowed_methods or ()) or not _time_for_a_retry():
            # An exhausted plain Retry raises MaxRetryError, which requests turns into
            # its usual ConnectionError / ConnectTimeout.
            return Retry(total=0, raise_on_status=False).increment(method, url, *args, **kwargs)
        retry = super().increment(method, url, *args, **kwargs)
        # The attempt that failed, now that another follows (a last one is recorded by request_json).
        response, error = kwargs.get("response"), kwargs.get("error")
        if response is not None:
            status = str(response.status)
        else:
            status = "timeout" if isinstance(error, Urllib3Timeout) else "error"
        _record(method.upper(), urlsplit(url or "").path, status)
        _count_attempt()  # urllib3 is about to send the request again
        return retry

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        # A retry is one more request against the app-wide budget.
        if _retry_budget.get():
            ratelimit.acquire()


def _environment_proxies() -> dict[str, str]:
    """The proxies the environment asks for (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), for the session.

    Read once, when a session is made: left to itself (`trust_env`), requests re-reads
    every proxy variable and looks for ~/.netrc on every call, about 13 % of a worker's
    CPU. A self-hoster behind a proxy sets the variables before starting the processes,
    so reading them at start keeps that working. Every call goes to ML_API_URL's host:
    when NO_PROXY names it, no proxy at all (requests drops a per-host "no proxy" entry
    from a session's proxies, so the exception cannot be written there).
    """
    if requests.utils.should_bypass_proxies(settings.ML_API_URL, no_proxy=None):
        return {}
    return {
        scheme: url
        for scheme, url in urllib.request.getproxies().items()
        if scheme in ("http", "https", "all")
    }


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no per-call environment and netrc lookups: see _environment_proxies
    session.proxies = _environment_proxies()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    retry = _GetOnlyRetry(
        total=RETRY_TOTAL,
        connect=RETRY_TOTAL,
        read=RETRY_TOTAL,
        status=RETRY_TOTAL,
        other=0,
        redirect=False,
        backoff_factor=RETRY_BACKOFF,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)  # the bundled sandbox speaks plain HTTP
    return session


_local = threading.local()


def get_session() -> requests.Session:
    """Return this thread's session (requests sessions are not thread-safe; pools are reused)."""
    session = getattr(_local, "session", None)
    # A forked worker (Celery prefork, gunicorn --preload) inherits the parent's
    # thread-local; its pooled sockets belong to the parent, so start afresh.
    if session is None or getattr(_local, "pid", None) != os.getpid():
        session = _new_session()
        _local.session = session
        _local.pid = os.getpid()
    return session


def timeouts() -> tuple[float, float]:
    """Return the (connect, read) timeouts from settings, cut to the caller's deadline if any."""
    return (
        max(0.1, deadline.cap(float(settings.ML_CONNECT_TIMEOUT))),
        max(0.1, deadline.cap(float(settings.ML_READ_TIMEOUT))),
    )


# --- The choke point -----------------------------------------------------------------------


def _send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    json_body: Any = None,
) -> requests.Response:
    """Send one request through the session's adapter, the body read; redirects not followed.

    `Session.request` would merge every session setting into each request one by one, run
    the session's cookie jar through cookielib on the way out and in, dispatch hooks and
    look for redirects: about a fifth of the CPU of a sync's four calls, for nothing this
    client uses (no cookies: the bearer token travels per call, and one seller's cookie
    must not ride along with the next seller's call on the same thread's session; no
    hooks; no auth but the header; no redirects followed; the environment already read,
    see _environment_proxies). What is kept of the session is what it is for: its
    headers, its proxies and its adapter, with the connection pool and the GET-only retries.
    """
    request = requests.PreparedRequest()
    request.prepare_method(method)
    # Encoded here, as requests would (doseq: a list is the key repeated): its own encoder
    # checks every value against typing Protocols at run time, several times slower.
    request.prepare_url(url, urlencode(params, doseq=True) if params else None)
    request.prepare_headers({**session.headers, **headers})
    request.prepare_body(data, None, json_body)
    response = session.get_adapter(url).send(request, timeout=timeouts(), proxies=session.proxies)
    # Read the body now, as Session.send does unless streaming: the connection goes back
    # to the pool, and a read that times out is raised here, as a timeout.
    response.content  # noqa: B018
    return response


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower())


def _build_url(path_or_url: str, *, with_token: bool) -> str:
    base = settings.ML_API_URL.rstrip("/")
    if path_or_url.startswith(("http://", "https://")):
        # Absolute URLs are allowed (the sandbox, links ML returns) but a bearer token
        # only ever goes to the configured API host.
        if with_token and _origin(path_or_url) != _origin(base):
            raise ValueError("refusing to send an ML access token to a host other than ML_API_URL")
        return path_or_url
    return f"{base}/{path_or_url.lstrip('/')}"


def _is_success(status: int, path: str, expected: tuple[int, ...]) -> bool:
    if status in expected:
        return True
    # The Users API answers 206 when a sub-block (e.g. reputation) failed to load; the
    # rest is valid (§3).
    return status == 206 and path.startswith("/users")


def request_json(
    method: str,
    path_or_url: str,
    *,
    token: str | None = None,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    json: Mapping[str, Any] | None = None,
    expected: tuple[int, ...] = (200,),
    budget: bool = True,
    array: bool = False,
) -> Any:
    """Call ML and return the JSON object it answered (a JSON array, with ``array``).

    ``path_or_url`` is a path under ``settings.ML_API_URL`` (or an absolute URL on that
    host when a token is sent). ``token`` goes only in the Authorization header, never
    in the URL (§2). ``data`` is sent form-encoded, which only the token endpoint takes
    (§1.3); ``json`` as a JSON body (``POST /answers``, §4.3). With ``budget`` the call
    first takes a token from the shared rate budget. ``array`` is for the answers that
    are a list (the items multiget, §11.3).

    Raises ``MLUnavailable`` for timeouts and connection errors, the error built by
    ``error_from_response`` for a non-success status, and ``MLBadResponse`` when the body
    is not a JSON object. A 429 also slows every process down (``ratelimit.penalize``).
    """
    method = method.upper()
    url = _build_url(path_or_url, with_token=token is not None)
    path = urlsplit(url).path
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}

    if deadline.time_left() == 0:
        # The caller's overall deadline has passed: do not start another call.
        raise MLUnavailable("Mercado Livre did not answer in time", code="deadline")
    if budget:
        ratelimit.acquire()
    _count_attempt()
    budget_token = _retry_budget.set(budget)
    started = time.monotonic()
    try:
        response = _send(
            get_session(), method, url, params=params, data=data, headers=headers, json_body=json
        )
    except requests.Timeout as exc:
        _record(method, path, "timeout")
        logger.info("ML %s %s timed out after %.0f ms", method, path, _elapsed_ms(started))
        raise MLUnavailable(f"Mercado Livre timed out ({type(exc).__name__})", code="timeout") from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        _record(method, path, _failure_status(exc))
        logger.info("ML %s %s connection failed after %.0f ms", method, path, _elapsed_ms(started))
        raise MLUnavailable(
            f"Could not reach Mercado Livre ({type(exc).__name__})", code="connection_error"
        ) from exc
    finally:
        _retry_budget.reset(budget_token)

    status = response.status_code
    _record(method, path, str(status))
    # Path and status only: the URL's query is harmless but headers and bodies are not.
    logger.debug("ML %s %s -> %s in %.0f ms", method, path, status, _elapsed_ms(started))

    if not _is_success(status, path, expected):
        error = error_from_response(response)
        if isinstance(error, MLRateLimited):
            ratelimit.penalize(error.retry_after)
        raise error

    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        raise MLBadResponse(f"{method} {path} answered a body that is not JSON", status=status) from None
    if array:
        if not isinstance(body, list):
            raise MLBadResponse(f"{method} {path} answered JSON that is not an array", status=status)
        return body
    if not isinstance(body, dict):
        raise MLBadResponse(f"{method} {path} answered JSON that is not an object", status=status)
    return body


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
