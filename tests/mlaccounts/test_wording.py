"""Words a first-time seller reads on the dashboard's pages (issue 12): times in words with the
exact time as a tooltip, countries in the reader's language, and a sandbox banner whose advice
about the redirect URI Mercado Livre will accept.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount
from tests.factories import AccountEventFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


def time_with_tooltip(words):
    """A <time> element reading `words`, with the day and time (pt-BR short format) as its title."""
    return (
        r'<time datetime="[^"]+" title="\d\d/\d\d/\d\d\d\d \d\d:\d\d" data-relative="(past|next)">'
        + re.escape(words)
        + "</time>"
    )


def test_the_account_page_shows_times_in_words_with_the_exact_time_as_a_tooltip(client_user, ml_account):
    now = timezone.now()
    MLAccount.objects.filter(pk=ml_account.pk).update(
        last_sync=now - timedelta(minutes=3, seconds=5),
        next_sync=now - timedelta(seconds=5),
        last_token_refresh=now - timedelta(seconds=50),
    )
    AccountEventFactory(account=ml_account)
    body = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()
    assert re.search(time_with_tooltip("há 3\xa0minutos"), body)
    assert re.search(time_with_tooltip("agora"), body)  # the next sync is due
    assert re.search(time_with_tooltip("agora mesmo"), body)  # renewed 50 s ago
    assert "0\xa0minuto" not in body
    assert "@LOJA_ALICE · Brasil ·" in body


def test_the_account_page_names_the_country_in_english_for_an_english_reader(client_user, ml_account):
    client_user.cookies["django_language"] = "en"
    body = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()
    assert "@LOJA_ALICE · Brazil ·" in body


def test_a_pending_invitation_says_when_it_expires_in_words(client, user):
    workspace = WorkspaceFactory(name="Agência")
    member(workspace, user, "owner")
    services.invitation_create(workspace=workspace, invited_by=user, email="bob@example.com", role="viewer")
    client.force_login(user)
    body = client.get(reverse("dashboard:members", args=[workspace.pk])).content.decode()
    assert re.search(
        r'expira <time datetime="[^"]+" title="[^"]+" data-relative="past">em 6\xa0dias</time>', body
    )


# --- the sandbox banner ------------------------------------------------------------------------------


def test_the_sandbox_banner_never_suggests_a_plain_http_redirect_uri(client, settings):
    settings.ML_SANDBOX = True
    body = client.get(reverse("account_login")).content.decode()
    callback = reverse("dashboard:connect_callback")
    assert f"http://testserver{callback}" not in body
    assert "só aceita endereços HTTPS" in body and "túnel" in body and "proxy reverso" in body
    assert f"<code>https://<em>esse-host</em>{callback}</code>" in body
    assert "<code>ML_REDIRECT_URI</code>" in body


def test_over_https_the_sandbox_banner_shows_the_exact_redirect_uri(client, settings):
    settings.ML_SANDBOX = True
    settings.SECURE_SSL_REDIRECT = False
    body = client.get(reverse("account_login"), secure=True).content.decode()
    assert f"<code>https://testserver{reverse('dashboard:connect_callback')}</code>" in body
