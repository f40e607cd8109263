"""Loaded with `-p tests.testenv` before Django reads its settings.

Tests run with DEBUG off, like production, so they need keys that pass the settings'
strength check; real values come from the environment when set (CI), otherwise fresh
random ones per test session: any key written in the repository is a published one,
which the settings refuse. (Subprocesses the tests start inherit them.)
"""

import os
import secrets
import tempfile

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("SALT_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ML_REQUESTS_PER_SECOND", "0")
# Tests behave like production (DEBUG off) even when a developer's .env says DEBUG=1.
os.environ.setdefault("DEBUG", "false")
# Keep tests away from a developer's var/ (SQLite file, file cache, sandbox state).
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="mlaccounts-test-"))
