"""mlaccounts/celery.py: in sandbox mode a worker takes no task before the sandbox listens.

(The whole `make run` start, worker first and sandbox later: test_make_run.py.)
"""

import socket
import threading
import time

import pytest

from mlaccounts import celery


@pytest.fixture
def sandbox_port(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ML_SANDBOX = True
    settings.ML_SANDBOX_URL = settings.ML_API_URL = f"http://127.0.0.1:{port}"
    return port


def test_the_worker_waits_until_the_sandbox_listens(sandbox_port, caplog):
    listener = socket.socket()

    def listen_later():
        time.sleep(0.5)
        listener.bind(("127.0.0.1", sandbox_port))
        listener.listen()

    thread = threading.Thread(target=listen_later)
    began = time.monotonic()
    thread.start()
    try:
        celery._wait_for_the_sandbox()
        waited = time.monotonic() - began
    finally:
        thread.join()
        listener.close()
    assert waited >= 0.5  # it waited for the listener (no upper bound: the machine's speed varies)
    assert [r.event for r in caplog.records if hasattr(r, "event")] == ["sandbox_wait", "sandbox_wait"]
    assert caplog.records[-1].outcome == "ok"


def test_the_wait_is_bounded(sandbox_port, monkeypatch, caplog):
    monkeypatch.setattr(celery, "SANDBOX_WAIT_SECONDS", 0.3)
    celery._wait_for_the_sandbox()  # returns (pytest-timeout would stop a wait that never ends)
    assert caplog.records[-1].outcome == "timeout" and caplog.records[-1].levelname == "WARNING"


def test_with_a_real_ml_application_nothing_is_awaited(settings, monkeypatch):
    settings.ML_SANDBOX = False
    monkeypatch.setattr(celery, "_listens", lambda host, port: pytest.fail("probed ML"))
    celery._wait_for_the_sandbox()
