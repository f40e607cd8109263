"""Sign-up, login and password handling through django-allauth, with email as the login."""

import pytest
from django.contrib.auth import authenticate
from django.core import mail
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def test_signup_creates_a_user_and_logs_in(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "New.Seller@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.seller@example.com"
    assert client.get(reverse("dashboard:overview")).status_code == 200


def test_signup_with_an_existing_email_in_other_case_is_refused(client, user):
    response = client.post(
        reverse("account_signup"),
        {"email": "ALICE@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert User.objects.count() == 1


def test_weak_password_is_refused(client):
    response = client.post(
        reverse("account_signup"), {"email": "x@example.com", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.exists()


def test_login_ignores_email_case(client, user):
    response = client.post(reverse("account_login"), {"login": "Alice@Example.COM", "password": PASSWORD})
    assert response.status_code == 302
    assert authenticate(username="ALICE@example.com", password=PASSWORD) == user


def test_wrong_password_does_not_log_in(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong password"})
    assert response.status_code == 200
    assert client.get(reverse("dashboard:overview")).status_code == 302


def test_password_reset_sends_an_email(client, user):
    client.post(reverse("account_reset_password"), {"email": user.email})
    assert len(mail.outbox) == 1
    assert user.email in mail.outbox[0].to


def test_password_change(client_user, user):
    response = client_user.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": "another long passphrase 9",
            "password2": "another long passphrase 9",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another long passphrase 9")


def test_pages_use_the_project_layout_in_portuguese(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="pt-br">' in html
    assert "ML Accounts" in html


def test_argon2_is_the_production_hasher():
    from django.conf import settings as django_settings  # the real settings, not the test override

    from mlaccounts import settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert any("BCrypt" in hasher for hasher in project_settings.PASSWORD_HASHERS)
    assert django_settings.AUTH_USER_MODEL == "accounts.User"


def test_a_bcrypt_hash_from_the_old_system_verifies_and_is_upgraded(settings, user):
    import bcrypt

    from mlaccounts import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    old_system_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    User.objects.filter(pk=user.pk).update(password="bcrypt$" + old_system_hash)
    assert authenticate(username=user.email, password=PASSWORD) == user
    user.refresh_from_db()
    assert user.password.startswith("argon2")


# --- wording (issue 12) ---------------------------------------------------------------------------


def test_the_password_reset_email_names_the_product_not_the_host(client, user, settings):
    client.post(reverse("account_reset_password"), {"email": user.email})
    message = mail.outbox[-1]
    assert message.subject.startswith("[ML Accounts] ")
    assert message.body.startswith("Olá! Esta mensagem é de ML Accounts.")
    assert "Obrigado por usar ML Accounts!" in message.body
    assert "Olá da" not in message.body
    settings.SITE_NAME = "Contas da Loja"
    client.post(reverse("account_reset_password"), {"email": user.email})
    assert mail.outbox[-1].body.startswith("Olá! Esta mensagem é de Contas da Loja.")


def test_the_reset_sent_page_says_where_the_email_went_without_an_email_server(client, user, settings):
    response = client.post(reverse("account_reset_password"), {"email": user.email}, follow=True)
    assert response.status_code == 200 and 'id="email-in-terminal"' not in response.content.decode()
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    body = client.get(reverse("account_reset_password_done")).content.decode()
    assert 'id="email-in-terminal"' in body and "no terminal onde o <code>make run</code>" in body


def test_the_password_changed_page_leads_to_sign_in(client):
    body = client.get(reverse("account_reset_password_from_key_done")).content.decode()
    assert f'href="{reverse("account_login")}"' in body and "Entrar com a nova senha" in body


def test_remember_me_in_brazilian_sentence_case(client):
    body = client.get(reverse("account_login")).content.decode()
    assert "Lembrar de mim" in body and "Lembrar de Mim" not in body
