"""The project as a whole: settings that refuse bad configuration, deploy checks, compose."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_python(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SALT_KEY", "DEBUG"}}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_refuses_to_start_without_keys_when_debug_is_off(tmp_path):
    # An empty .env path: the developer's .env must not supply DEBUG=1 here.
    result = run_python(
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='mlaccounts.settings';"
        "from django.conf import settings; settings.SECRET_KEY",
        DEBUG="0",
    )
    assert result.returncode != 0
    assert "SECRET_KEY and SALT_KEY must be set" in result.stderr


def test_rejects_a_malformed_boolean():
    result = run_python(
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='mlaccounts.settings';"
        "from django.conf import settings; settings.DEBUG",
        DEBUG="maybe",
    )
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_deploy_check_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
            "SALT_KEY": "production-salt",
            "ALLOWED_HOSTS": "accounts.example.com",
            "SECURE_SSL_REDIRECT": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_compose_file_is_valid(tmp_path):
    # No Docker engine here; Debian's docker-compose validates the file without one.
    # CI installs it, so there the test must run, not skip.
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed in CI")
        pytest.skip("docker-compose is not installed")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    result = subprocess.run(
        [binary, "-f", "compose.yaml", "config", "--services"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {"postgres", "redis", "web", "worker", "beat"}
