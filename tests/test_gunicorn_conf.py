"""gunicorn.conf.py: explicit limits above the app's own deadlines, and an access log
without query strings (OAuth `code` and `state` arrive in one)."""

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from gunicorn import glogging
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "/ml-accounts/connect/callback/"
QUERY = "code=TG-5f1e-secret-code&state=st4te-s3cret"


def _load(monkeypatch, **env):
    for name in ("WEB_CONCURRENCY", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gunicorn_config(module, **overrides) -> Config:
    """The module's values through gunicorn's own validation, as `--config` does."""
    config = Config()
    for name, value in {**vars(module), **overrides}.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_limits_are_explicit_and_above_the_app_deadlines(monkeypatch):
    conf = _load(monkeypatch)
    config = _gunicorn_config(conf)
    assert (config.timeout, config.graceful_timeout, config.keepalive) == (30, 30, 5)
    assert (config.workers, config.bind) == (3, ["0.0.0.0:8000"])
    assert config.wsgi_app == "mlaccounts.wsgi:application"
    assert config.timeout > settings.SYNC_ALL_TIMEOUT
    # One sync's overall deadline (added with the ML client's deadline work), when present.
    assert getattr(settings, "SYNC_REQUEST_DEADLINE", 0) < config.timeout


def test_workers_come_from_web_concurrency(monkeypatch):
    assert _load(monkeypatch, WEB_CONCURRENCY="5").workers == 5
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY"):
        _load(monkeypatch, WEB_CONCURRENCY="lots")
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY"):
        _load(monkeypatch, WEB_CONCURRENCY="0")


def test_access_log_line_has_the_path_but_never_the_query(monkeypatch, tmp_path):
    log_file = tmp_path / "access.log"
    config = _gunicorn_config(_load(monkeypatch), accesslog=str(log_file))
    logger = glogging.Logger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{CALLBACK}?{QUERY}",
        "PATH_INFO": CALLBACK,
        "QUERY_STRING": QUERY,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": f"https://accounts.example.com{CALLBACK}?{QUERY}",
        "HTTP_USER_AGENT": "Mozilla/5.0",
    }
    response = SimpleNamespace(status="302 Found", headers=[("Location", "/")], sent=0)
    request = SimpleNamespace(headers=[("HOST", "accounts.example.com")])

    logger.access(response, request, environ, timedelta(milliseconds=42))
    for handler in logger.access_log.handlers:
        handler.flush()

    line = log_file.read_text()
    assert f'"GET {CALLBACK} HTTP/1.1" 302' in line
    assert "code=" not in line and "state=" not in line and "secret" not in line


def test_access_log_masks_the_webhook_secret(monkeypatch, tmp_path):
    log_file = tmp_path / "access.log"
    conf = _load(monkeypatch)
    config = _gunicorn_config(conf, accesslog=str(log_file))
    assert config.logger_class is conf.AccessLogger
    logger = config.logger_class(config)
    path = "/webhooks/mercadolivre/Sup3r-s3cret-path-segment/"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "54.88.218.97",
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=19)
    request = SimpleNamespace(headers=[])

    logger.access(response, request, environ, timedelta(milliseconds=4))
    for handler in logger.access_log.handlers:
        handler.flush()

    line = log_file.read_text()
    assert '"POST /webhooks/mercadolivre/***/ HTTP/1.1" 200' in line
    assert "s3cret" not in line


def test_the_image_and_compose_start_gunicorn_with_this_file():
    command = '["gunicorn", "--config", "gunicorn.conf.py"]'
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    assert next(line for line in dockerfile if line.startswith("CMD ")) == f"CMD {command}"
    assert f"command: {command}" in (ROOT / "compose.yaml").read_text()
