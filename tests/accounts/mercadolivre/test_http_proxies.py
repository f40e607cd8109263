"""http.py's session reads the environment's proxies once, not on every call.

Real local servers (a fake ML and a fake forward proxy), no `responses`: the mock would
bypass the adapter, where the proxy is chosen.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from accounts.mercadolivre import http

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _server(name: str):
    """A local HTTP server answering every GET with {"via": name, "target": <request line target>}."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"via": name, "target": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers(settings, monkeypatch):
    """A fake ML (ML_API_URL) and a fake forward proxy; no proxy variables; a fresh session."""
    ml, proxy = _server("ml"), _server("proxy")
    settings.ML_API_URL = f"http://127.0.0.1:{ml.server_port}"
    settings.ML_REQUESTS_PER_SECOND = 0
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    http._local.__dict__.clear()  # the next call builds this thread's session afresh
    yield f"http://127.0.0.1:{proxy.server_port}"
    http._local.__dict__.clear()
    for server in (ml, proxy):
        server.shutdown()
        server.server_close()


def test_a_proxy_in_the_environment_carries_the_calls(servers, settings, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", servers)

    body = http.request_json("GET", "/sites")

    # A forward proxy receives the absolute URL of the ML host.
    assert body == {"via": "proxy", "target": f"{settings.ML_API_URL}/sites"}


def test_https_proxy_is_used_for_the_real_ml_host(servers, settings, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    settings.ML_API_URL = "https://api.mercadolibre.com"

    session = http.get_session()

    assert session.trust_env is False
    assert requests.utils.select_proxy("https://api.mercadolibre.com/sites", session.proxies) == (
        "http://proxy.example:3128"
    )


def test_no_proxy_naming_the_ml_host_goes_direct(servers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", servers)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    assert http.request_json("GET", "/sites") == {"via": "ml", "target": "/sites"}


def test_no_proxy_for_another_host_keeps_the_proxy(servers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", servers)
    monkeypatch.setenv("NO_PROXY", "internal.example,localhost")

    assert http.request_json("GET", "/sites")["via"] == "proxy"


def test_no_proxy_variables_means_direct(servers):
    assert http.request_json("GET", "/sites") == {"via": "ml", "target": "/sites"}


def test_calls_read_neither_netrc_nor_the_environment(servers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", servers)
    http.get_session()  # built once, here: the environment is read now
    reads = []
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", lambda *a, **k: reads.append("netrc"))
    monkeypatch.setattr(
        requests.sessions, "get_environ_proxies", lambda *a, **k: reads.append("environment") or {}
    )
    monkeypatch.setattr(requests.utils, "should_bypass_proxies", lambda *a, **k: reads.append("bypass"))

    for _ in range(3):
        assert http.request_json("GET", "/sites")["via"] == "proxy"

    assert reads == []
