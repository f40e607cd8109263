"""DATABASES from the environment: an explicit SQLite URL gets the embedded default's tuning."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT_DATABASE = (
    "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'mlaccounts.settings';"
    "from django.conf import settings; db = settings.DATABASES['default'];"
    "print(json.dumps({'ENGINE': db['ENGINE'], 'NAME': str(db['NAME']), 'OPTIONS': db.get('OPTIONS', {})}))"
)


def database_settings(**env) -> dict:
    variables = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    variables.update(env)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE],
        cwd=ROOT,
        env=variables,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_an_explicit_sqlite_url_gets_the_same_options_as_the_embedded_default(tmp_path):
    embedded = database_settings(VAR_DIR=str(tmp_path))
    explicit = database_settings(VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/other.sqlite3")
    assert explicit["ENGINE"] == embedded["ENGINE"] == "django.db.backends.sqlite3"
    assert explicit["NAME"] == f"{tmp_path}/other.sqlite3"
    assert explicit["OPTIONS"] == embedded["OPTIONS"]
    options = explicit["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert "busy_timeout=20000" in options["init_command"]
    assert options["timeout"] == 20


def test_a_postgres_url_is_left_as_parsed(tmp_path):
    db = database_settings(VAR_DIR=str(tmp_path), DATABASE_URL="postgres://u@db.example:5432/app")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert "transaction_mode" not in db["OPTIONS"]
