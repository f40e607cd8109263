"""The Content-Security-Policy: no inline scripts or styles in our pages, with the few
relaxations that pages we do not write need (the admin, Swagger UI)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.mercadolivre.oauth import SITE_AUTH_HOSTS
from tests.factories import AccountEventFactory, UserFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event handler attribute"),
    (re.compile(r"\shx-on", re.I), "hx-on handler"),
]


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def inline_code(html: str) -> list[str]:
    # The htmx config meta tag is JSON in an attribute, not code.
    html = re.sub(r'<meta name="htmx-config"[^>]*>', "", html)
    return [label for pattern, label in INLINE if pattern.search(html)]


def test_our_templates_have_no_inline_scripts_or_styles():
    found = {
        str(path.relative_to(TEMPLATES)): inline_code(path.read_text())
        for path in TEMPLATES.rglob("*.html")
        if inline_code(path.read_text())
    }
    assert found == {}


def test_dashboard_pages_send_a_strict_policy_and_render_no_inline_code(client_user, ml_account):
    AccountEventFactory(account=ml_account)
    pages = [
        reverse("dashboard:overview"),
        reverse("dashboard:overview_list"),
        reverse("dashboard:connect_new"),
        reverse("dashboard:account", args=[ml_account.pk]),
        reverse("dashboard:account_remove", args=[ml_account.pk]),
        reverse("account_change_password"),
        reverse("dashboard:questions"),
        reverse("dashboard:claims"),
    ]
    for path in pages:
        response = client_user.get(path)
        policy = directives(response)
        assert policy["default-src"] == ["'self'"], path
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        # Listing thumbnails (the questions queue) come from ML's image host, and only from there.
        assert policy["img-src"] == ["'self'", "data:", "https://http2.mlstatic.com"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["form-action"][0] == "'self'", path
        assert inline_code(response.content.decode()) == [], path


@pytest.mark.parametrize("name", ["account_login", "account_signup", "account_reset_password"])
def test_sign_in_pages_render_no_inline_code(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert inline_code(response.content.decode()) == []
    assert directives(response)["script-src"] == ["'self'"]


def test_htmx_is_served_from_our_static_files_without_its_inline_styles(client_user):
    body = client_user.get(reverse("dashboard:overview")).content.decode()
    assert re.search(r'<script src="/static/vendor/htmx/htmx.min.js" defer>', body)
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", body).group(1))
    assert config["includeIndicatorStyles"] is False
    assert (Path(settings.BASE_DIR) / "static/vendor/htmx/htmx.min.js").stat().st_size > 40_000


def test_connect_form_may_go_to_the_sandbox_authorization_host(client_user, settings):
    # Sandbox mode in tests: the configured ML_AUTH_URL is where the site picker leads.
    policy = directives(client_user.get(reverse("dashboard:connect_new")))
    assert settings.ML_AUTH_URL in policy["form-action"]


def test_a_real_application_may_send_the_browser_to_every_sites_authorization_host():
    env = {**os.environ, "ML_CLIENT_ID": "1234", "ML_CLIENT_SECRET": "s3cret", "ML_AUTH_URL": ""}
    script = (
        "from django.conf import settings as s; import json; "
        "print(json.dumps(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "mlaccounts.settings"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    form_action = json.loads(result.stdout.strip().splitlines()[-1])
    assert form_action[0] == "'self'"
    assert set(SITE_AUTH_HOSTS.values()) <= set(form_action)


def test_admin_keeps_working_with_inline_styles_allowed_only_there(client):
    admin = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    response = client.get("/admin/accounts/mlaccount/")
    assert response.status_code == 200
    policy = directives(response)
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]
    beat = directives(client.get("/admin/django_celery_beat/periodictask/add/"))
    assert "'unsafe-inline'" in beat["script-src"]
    assert directives(client.get(reverse("dashboard:overview")))["style-src"] == ["'self'"]


def test_api_docs_get_only_their_inline_stylesheet(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    policy = directives(response)
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]
