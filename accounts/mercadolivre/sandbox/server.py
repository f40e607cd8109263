"""The sandbox's HTTP server: start it in a thread (tests, benchmarks) or serve in the foreground."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .desk_routes import DeskRoutes
from .handler import Route
from .oauth_routes import OAuthRoutes
from .resource_routes import ResourceRoutes
from .state import SandboxState


class Handler(OAuthRoutes, ResourceRoutes, DeskRoutes):
    """Both ML hosts on one port: the authorization page, the token endpoint and the API."""

    ROUTES: list[Route] = OAuthRoutes.ROUTES + ResourceRoutes.ROUTES + DeskRoutes.ROUTES


class SandboxHTTPServer(ThreadingHTTPServer):
    """One thread per connection, holding the shared state; its connections can be cut at stop."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool):
        self.sandbox_state = state
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so no handler of a stopped server answers again."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError) and not self.verbose:
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """The sandbox bound to ``host:port`` (port 0 picks a free one), with its ``state``.

    ``start()`` serves in a daemon thread, ``serve_forever()`` in the calling thread; both
    also start the notification postman and the activity ticker. ``stop()`` ends all of
    it. Usable as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
        *,
        verbose: bool = False,
    ):
        self.state = state if state is not None else SandboxState()
        self._httpd = SandboxHTTPServer((host, port), self.state, verbose)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False
        self._notifying = False

    @property
    def url(self) -> str:
        """Base URL of both the API and the authorization page, e.g. ``http://127.0.0.1:54321``."""
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def _start_notifications(self) -> None:
        if not self._notifying:
            self._notifying = True
            self.state.notifications.start()

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        self._start_notifications()
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="ml-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` or KeyboardInterrupt, then close."""
        self._serving = True
        try:
            self._start_notifications()
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False
            self.stop()

    def stop(self) -> None:
        """Stop notifying, stop serving, cut open connections and release the port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._notifying:
            # First, so that nothing is delivered once stop() returns.
            self.state.notifications.stop()
        if self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    state: SandboxState | None = None,
    *,
    state_file: Path | str | None = None,
    verbose: bool = False,
    **knobs: Any,
) -> SandboxServer:
    """Start the sandbox in a daemon thread and return the running SandboxServer.

    Without ``state`` a new SandboxState is made (on ``state_file`` if given); ``knobs``
    configure it. ``with start_sandbox() as sandbox: requests.get(sandbox.url + "/sites")``;
    ``start_sandbox(notifications_url="http://127.0.0.1:8000/hook/", notification_retry_seconds=0.05)``
    posts notifications there.
    """
    if state is None:
        state = SandboxState(state_file=state_file, **knobs)
    elif knobs:
        state.configure(**knobs)
    return SandboxServer(host, port, state, verbose=verbose).start()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8001,
    state: SandboxState | None = None,
    *,
    verbose: bool = False,
    on_ready: Callable[[SandboxServer], None] | None = None,
) -> None:
    """Serve the sandbox in the calling thread until KeyboardInterrupt (re-raised) or stop.

    ``on_ready`` is called with the bound server before serving starts (to print its URL).
    """
    server = SandboxServer(host, port, state, verbose=verbose)
    if on_ready is not None:
        on_ready(server)
    server.serve_forever()
