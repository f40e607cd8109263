"""The request plumbing under every sandbox route, and the ``/_sandbox/*`` test controls.

Controls: ``GET config|stats|sellers|notifications``; ``POST config|mint|expire|revoke|
activity|question-status|reset|reset-stats`` (JSON bodies). ``POST activity`` takes
``{"user_id", "topic" (questions, orders_v2, items, claims), "change": 1, "duplicates": 1}``;
``POST question-status`` takes ``{"question_id", "status": "DELETED"|"BANNED"|
"CLOSED_UNANSWERED"}`` and returns the question (404 for an unknown id); like an answer, it
notifies the app (topic ``questions``).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
import traceback
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .desk import DeskError
from .errors import FORBIDDEN, UNAUTHORIZED, Reply, api_error_body, bad_request, failure_body
from .sellers import SANDBOX_CLIENT_ID, DemoSeller
from .state import SandboxState

if TYPE_CHECKING:
    from .server import SandboxHTTPServer

# (path regex, {method: route name}, stats kind, family)
Route = tuple[re.Pattern[str], dict[str, str], str, str]
# The POST controls that take a JSON body.
_JSON_CONTROLS = frozenset({"config", "mint", "expire", "revoke", "activity", "question-status"})


class BaseHandler(BaseHTTPRequestHandler):
    """Plumbing shared by every route: parsing, dispatch, failure injection, auth, controls.

    Subclasses list their routes in ``ROUTES``: (path regex, {method: route}, stats kind,
    family). Families: "auth" is the browser page; "token" and "api" are API calls (rate
    limit and failure injection apply). A route named ``x`` is the method ``route_x``.
    """

    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries a Content-Length
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall
    server_version = "MLSandbox/1.0"
    timeout = 60  # an idle keep-alive connection frees its thread after a minute
    server: SandboxHTTPServer
    ROUTES: list[Route] = []

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    @property
    def state(self) -> SandboxState:
        return self.server.sandbox_state

    # -- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            self.close_connection = True
            raise Reply(413, api_error_body(413, "request_entity_too_large", "Body too large"))
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reply(
        self, status: int, body: dict[str, Any] | list[Any] | str, headers: dict[str, str] | None = None
    ):
        headers = dict(headers or {})
        if isinstance(body, str):
            payload, content_type = body.encode("utf-8"), "text/html; charset=utf-8"
        else:
            payload, content_type = json.dumps(body).encode("utf-8"), "application/json;charset=UTF-8"
        if self._counted:
            error = body.get("error") if isinstance(body, dict) else None
            self.state._record_response(status, error if isinstance(error, str) else None)
        self._send(status, payload, content_type, headers)

    def _redirect(self, location: str) -> None:
        if self._counted:
            self.state._record_response(302, None)
        self._send(302, b"", "text/html; charset=utf-8", {"Location": location})

    def _dispatch(self, method: str) -> None:
        self._counted = False
        try:
            self._body = self._read_body()
            split = urlsplit(self.path)
            self._raw_query = split.query
            self._query = parse_qs(split.query, keep_blank_values=True)
            if split.path.startswith("/_sandbox/"):
                self._control(method, split.path)
                return
            self._api(method, split.path)
        except Reply as reply:
            self._reply(reply.status, reply.body, reply.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._reply(500, api_error_body(500, "internal_error", f"sandbox error: {exc!r}"))

    def _api(self, method: str, path: str) -> None:
        methods: dict[str, str] = {}
        kind, family, match = "unknown", "api", None
        for pattern, route_methods, route_kind, route_family in self.ROUTES:
            match = pattern.fullmatch(path)
            if match:
                methods, kind, family = route_methods, route_kind, route_family
                break
        if family == "token":
            self._form = parse_qs(self._body.decode("utf-8", "replace"), keep_blank_values=True)
            grant = (self._form.get("grant_type") or [""])[0]
            kind = {"authorization_code": "token_exchange", "refresh_token": "token_refresh"}.get(grant, kind)
        state = self.state
        state._request_started(kind)
        self._counted = True
        try:
            latency = state.knobs.latency_ms
            if latency:
                time.sleep(latency / 1000)
            if family != "auth":
                self._inject_failures(token_endpoint=family == "token")
            if match is None:
                raise Reply(404, api_error_body(404, "not_found", f"Resource {path} not found."))
            route = methods.get(method)
            if route is None:
                raise Reply(405, api_error_body(405, "method_not_allowed", f"Method {method} not allowed"))
            getattr(self, f"route_{route}")(**match.groupdict())
        except Reply as reply:
            self._reply(reply.status, reply.body, reply.headers)
        finally:
            state._request_finished()

    def _inject_failures(self, *, token_endpoint: bool) -> None:
        state = self.state
        retry_after = state.knobs.retry_after
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if not state._take_rate_token():
            raise Reply(429, failure_body(429, token_endpoint=token_endpoint), headers)
        status = state._draw_failure(token_endpoint=token_endpoint)
        if status is not None:
            raise Reply(
                status, failure_body(status, token_endpoint=token_endpoint), headers if status == 429 else {}
            )

    def _param(self, name: str, default: str | None = None) -> str | None:
        values = self._query.get(name)
        return values[0] if values else default

    def _int_param(self, name: str, default: int) -> int:
        raw = self._param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"Invalid value for parameter {name}: {raw}") from None
        if value < 0:
            raise bad_request(f"Invalid value for parameter {name}: {raw}")
        return value

    def _authenticate(self) -> tuple[str, int]:
        """Return (client_id, user_id) of the Bearer token, or answer 400/401."""
        if "access_token" in self._query:
            # Tokens in the query string were switched off in 2021 (§2); refusing them
            # outright also keeps tokens out of URLs and access logs.
            raise bad_request(
                "The access_token query parameter is not supported. Send it in the Authorization header."
            )
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        identity = (
            self.state.authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        )
        if identity is None:
            raise Reply(401, dict(UNAUTHORIZED))
        return identity

    def _own_user(self, raw_user_id: str | None) -> DemoSeller:
        """Authenticate and require the token's user to be ``raw_user_id`` (403 otherwise)."""
        _, token_user = self._authenticate()
        if raw_user_id is None or not raw_user_id.strip().isdigit() or int(raw_user_id) != token_user:
            raise Reply(403, dict(FORBIDDEN))
        return self.state.seller(token_user)

    # -- control endpoints (not counted, no latency or failures)

    def _control(self, method: str, path: str) -> None:
        state = self.state
        name = path.removeprefix("/_sandbox/").rstrip("/")
        if method == "GET" and name == "config":
            self._reply(200, state.config())
        elif method == "GET" and name == "stats":
            self._reply(200, state.stats())
        elif method == "GET" and name == "sellers":
            # With their activity applied: the sizes the searches report right now.
            self._reply(200, [asdict(state.seller(seller.id)) for seller in state.sellers])
        elif method == "GET" and name == "notifications":
            self._reply(200, state.notifications.report())
        elif method == "POST" and name == "reset-stats":
            state.reset_stats()
            self._reply(200, state.stats())
        elif method == "POST" and name == "reset":
            state.reset()
            self._reply(200, {"reset": True})
        elif method == "POST" and name in _JSON_CONTROLS:
            data = self._json_body()
            try:
                if name == "config":
                    self._reply(200, state.configure(**data))
                elif name == "mint":
                    self._reply(
                        200,
                        state.mint(
                            self._json_user_id(data), client_id=data.get("client_id", SANDBOX_CLIENT_ID)
                        ),
                    )
                elif name == "activity":
                    self._reply(
                        200,
                        state.record_activity(
                            self._json_user_id(data),
                            data.get("topic"),
                            change=data.get("change", 1),
                            duplicates=data.get("duplicates", 1),
                        ),
                    )
                elif name == "question-status":
                    self._reply(200, self._set_question_status(data))
                elif name == "expire":
                    self._reply(200, {"expired": state.expire_access_tokens(self._json_user_id(data))})
                else:
                    self._reply(200, {"revoked": state.revoke(self._json_user_id(data))})
            except (TypeError, ValueError) as exc:
                raise Reply(400, {"error": "bad_request", "message": str(exc), "status": 400}) from None
        else:
            raise Reply(
                404, {"error": "not_found", "message": f"no control endpoint {method} {path}", "status": 404}
            )

    def _json_body(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body or b"{}")
        except ValueError:
            raise Reply(
                400, {"error": "bad_request", "message": "body must be JSON", "status": 400}
            ) from None
        if not isinstance(data, dict):
            raise Reply(400, {"error": "bad_request", "message": "body must be a JSON object", "status": 400})
        return data

    def _set_question_status(self, data: dict[str, Any]) -> dict[str, Any]:
        raw_id = data.get("question_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or not str(raw_id).isdigit():
            raise ValueError("question_id must be a positive integer")
        state = self.state
        try:
            with state._lock:
                question = state.desk.set_question_status(int(raw_id), data.get("status"))
                body = question.to_json()
        except DeskError as exc:
            raise Reply(
                exc.status, {"error": exc.error, "message": exc.message, "status": exc.status}
            ) from None
        # The question left the unanswered count: ML would notify the app of the change.
        state.notifications.notify(question.seller_id, "questions", f"/questions/{question.id}")
        return body

    @staticmethod
    def _json_user_id(data: dict[str, Any]) -> int:
        value = data.get("user_id")
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ValueError("user_id must be a positive integer")
        return int(value)
