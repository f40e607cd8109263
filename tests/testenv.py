"""Loaded with `-p tests.testenv` before Django reads its settings.

Tests run with DEBUG off, like production, so they need keys that pass the settings'
strength check; real values come from the environment when set (CI), otherwise fresh
random ones per test session: any key written in the repository is a published one,
which the settings refuse. (Subprocesses the tests start inherit them.)
"""

import os
import secrets
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("SALT_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ML_REQUESTS_PER_SECOND", "0")
# One notifications secret for the session and the processes it starts; the sandbox posts
# notifications and makes demo activity only where a test asks (a developer's .env turns
# both on for `make run`).
os.environ.setdefault("ML_WEBHOOK_SECRET", secrets.token_urlsafe(24))
os.environ.setdefault("ML_SANDBOX_NOTIFICATIONS_URL", "")
os.environ.setdefault("ML_SANDBOX_ACTIVITY_SECONDS", "0")
# Counters in this process only (a test of multiprocess mode sets its own directory in the
# processes it starts), and no error report to a developer's Sentry.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "")
os.environ.setdefault("SENTRY_DSN", "")
# Tests behave like production (DEBUG off) even when a developer's .env says DEBUG=1.
os.environ.setdefault("DEBUG", "false")
# Keep tests away from a developer's var/ (SQLite file, file cache, sandbox state).
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="mlaccounts-test-"))
# Keep the cache (throttle counts, the sync heartbeat) away from a developer's and from
# another test session's on the same Redis; a real worker started by a test inherits it.
os.environ.setdefault("CACHE_KEY_PREFIX", f"mlaccounts-test-{uuid.uuid4().hex[:12]}")

# pytest-xdist: each worker process inherits the variables above from the controller, so
# the workers would share one file cache and one Redis key prefix, and a test clearing the
# cache (the API conftest) would wipe another worker's throttle counts mid-test. Each worker
# gets its own. (The test databases are per worker already: pytest-django suffixes them.)
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker:
    _var = Path(os.environ["VAR_DIR"]) / _worker
    _var.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(_var)
    os.environ["CACHE_KEY_PREFIX"] += f"-{_worker}"
