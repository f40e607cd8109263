"""The project as a whole: settings that refuse bad configuration, deploy checks, compose."""

import json
import os
import secrets
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


GOOD_KEY = "Zq8vN3xW0kLm2Rt7Yp5sBc9Hd4Gf6Ja1"  # 32 characters, all distinct (not a secret)
IMPORT_SETTINGS = (
    "import os; os.environ['DJANGO_SETTINGS_MODULE']='mlaccounts.settings';"
    "from django.conf import settings; settings.SECRET_KEY"
)
WEAK_KEYS = [
    # Published: .env.example, the Dockerfile, CI and the old test defaults, the dev keys.
    "change-me",
    "CHANGE-ME",
    "x",
    "build-only",
    "ci-salt",
    "test-salt-key",
    "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef",
    "dev-insecure-salt",
    # Short, or long but repetitive.
    "Zq8vN3xW0kLm2Rt7Yp5sBc9Hd4Gf6Ja",
    "abababababababababababababababababababab",
    "0123456780123456780123456780123456780123",
]


# One subprocess runs the settings module once per case (runpy), each with its own
# environment: a fresh interpreter per case would make this test take minutes.
_RUN_SETTINGS_PER_CASE = """
import json, os, runpy, sys
from django.core.exceptions import ImproperlyConfigured
results = []
for env in json.loads(sys.argv[1]):
    os.environ.update(env)
    try:
        runpy.run_path("mlaccounts/settings.py")
        results.append(None)
    except ImproperlyConfigured as exc:
        results.append(str(exc))
print(json.dumps(results))
"""


def run_settings_per_case(cases):
    result = subprocess.run(
        [sys.executable, "-c", _RUN_SETTINGS_PER_CASE, json.dumps(cases)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SALT_KEY", "DEBUG"}},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_refuses_to_start_on_a_weak_or_published_key_when_debug_is_off():
    cases = [
        {"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "SALT_KEY": GOOD_KEY, name: weak}
        for name in ("SECRET_KEY", "SALT_KEY")
        for weak in WEAK_KEYS
    ]

    errors = run_settings_per_case(cases)

    for case, error in zip(cases, errors, strict=True):
        name = "SECRET_KEY" if case["SECRET_KEY"] != GOOD_KEY else "SALT_KEY"
        weak = case[name]
        assert error is not None, f"{name}={weak!r} was accepted"
        assert error.startswith(f"{name} ")
        assert "secrets.token_urlsafe" in error
        if len(weak) > 3:  # the key is never echoed ("x" is in any sentence)
            assert weak not in error


def test_every_key_of_a_rotation_list_is_checked():
    result = run_python(IMPORT_SETTINGS, DEBUG="0", SECRET_KEY=f"{GOOD_KEY},change-me", SALT_KEY=GOOD_KEY)

    assert result.returncode != 0
    assert "SECRET_KEY (key 2 of its comma list) is a published example value" in result.stderr


def test_starts_on_strong_keys_and_on_the_development_keys_with_debug_on():
    strong = run_python(
        IMPORT_SETTINGS, DEBUG="0", SECRET_KEY=f"{GOOD_KEY},{GOOD_KEY[::-1]}", SALT_KEY=GOOD_KEY
    )
    development = run_python(IMPORT_SETTINGS, DEBUG="1")

    assert strong.returncode == 0, strong.stderr
    assert development.returncode == 0, development.stderr


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
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SALT_KEY": secrets.token_urlsafe(50),
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


def test_the_site_name_comes_from_the_environment():
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='mlaccounts.settings';"
        "from django.conf import settings;"
        "print(settings.SITE_NAME + '|' + settings.ACCOUNT_EMAIL_SUBJECT_PREFIX)"
    )
    assert (
        run_python(code, DEBUG="1", SITE_NAME="Contas da Loja").stdout.rstrip("\n")
        == "Contas da Loja|[Contas da Loja] "
    )
    assert run_python(code, DEBUG="1", SITE_NAME="").stdout.rstrip("\n") == "ML Accounts|[ML Accounts] "
