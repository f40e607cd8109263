"""Loaded with `-p tests.testenv` before Django reads its settings.

Tests run with DEBUG off, like production, so they need keys; real values come from the
environment when set (CI), these otherwise.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SALT_KEY", "test-salt-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ML_REQUESTS_PER_SECOND", "0")
# Tests behave like production (DEBUG off) even when a developer's .env says DEBUG=1.
os.environ.setdefault("DEBUG", "false")
# Keep tests away from a developer's var/ (SQLite file, file cache, sandbox state).
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="mlaccounts-test-"))
