"""One canonical form per email address (issue 10.1): look-alikes are the same user.

`ſ` (U+017F) and fullwidth letters fold to ASCII, combining forms compose, case folds; a
dotless `ı` (U+0131) is a letter of its own, so its address is a different one, and
neither address may break the other's login.
"""

import uuid

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from accounts.emails import InvalidEmail, canonical_email, email_key
from accounts.models import User
from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOOKALIKES = [
    "kate@ｓec.test",  # fullwidth s
    "kate@ſec.test",  # long s
    "KATE@SEC.TEST",
    "ｋａｔｅ@sec.test",
    "Kate@Sec.Test ",
    "kate＠sec.test",  # fullwidth at sign
]


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    # allauth's login rate limit counts in the cache; a fresh prefix on a shared Redis.
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": uuid.uuid4().hex}}
    else:
        cache.clear()


@pytest.fixture
def kate(db):
    return User.objects.create_user("kate@sec.test", PASSWORD)


@pytest.mark.parametrize("spelling", LOOKALIKES)
def test_lookalike_spellings_have_one_canonical_form(spelling):
    assert canonical_email(spelling) == "kate@sec.test"
    assert email_key(spelling) == email_key("kate@sec.test")


def test_combining_forms_compose():
    assert canonical_email("Jose\u0301@x.test") == canonical_email("josé@x.test") == "josé@x.test"


def test_idn_domains_are_idna_encoded_and_dotless_i_stays_a_letter():
    assert canonical_email("a@Bücher.de") == "a@xn--bcher-kva.de"
    assert canonical_email("victim.user@gmaıl.com") == "victim.user@xn--gmal-nza.com"
    assert canonical_email("victim.user@gmaıl.com") != canonical_email("victim.user@gmail.com")


@pytest.mark.parametrize(
    "value", ["a@a..test", "a@" + "x" * 64 + ".test", "no-at-sign", "@x.test", "a@[127.0.0.1]"]
)
def test_addresses_without_a_canonical_form_are_invalid(value):
    with pytest.raises(InvalidEmail):
        canonical_email(value)


def test_users_are_stored_in_canonical_form():
    user = User.objects.create_user("Kate@ｓec.Test", PASSWORD)

    assert user.email == "kate@sec.test"


@pytest.mark.parametrize("spelling", LOOKALIKES)
def test_any_spelling_authenticates_the_one_user(kate, spelling):
    assert authenticate(username=spelling, password=PASSWORD) == kate


def test_a_domain_idna_refuses_authenticates_nobody_without_error(kate):
    assert authenticate(username="kate@a..test", password=PASSWORD) is None


# --- the dashboard (allauth) ---------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["kate@ſec.test", "kate@ｓec.test", "KATE@sec.test"])
def test_dashboard_signup_with_a_lookalike_is_refused_and_the_victim_still_logs_in(client, kate, spelling):
    response = client.post(
        reverse("account_signup"), {"email": spelling, "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 200
    assert "email" in response.context["form"].errors
    assert User.objects.count() == 1
    assert EmailAddress.objects.exclude(email="kate@sec.test").count() == 0
    response = client.post(reverse("account_login"), {"login": "kate@sec.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("dashboard:overview")).status_code == 200


def test_dashboard_signup_stores_the_canonical_form(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "Nova@ＥXAMPLE.test", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    assert User.objects.get().email == "nova@example.test"
    assert EmailAddress.objects.get().email == "nova@example.test"


def test_dashboard_signup_with_an_unencodable_domain_is_a_form_error(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "kate@" + "x" * 64 + ".test", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200
    assert "email" in response.context["form"].errors


def test_dotless_i_registers_a_different_user_and_both_log_in(client):
    victim = User.objects.create_user("victim.user@gmail.com", PASSWORD)
    response = client.post(
        reverse("account_signup"),
        {"email": "victim.user@gmaıl.com", "password1": PASSWORD + "!", "password2": PASSWORD + "!"},
    )
    assert response.status_code == 302
    client.logout()

    # No MultipleObjectsReturned: each address finds its own user (PostgreSQL's UPPER()
    # folds ı to I, which is how the look-alike used to break the victim's login).
    assert authenticate(username="victim.user@gmail.com", password=PASSWORD) == victim
    assert authenticate(username="VICTIM.USER@GMAIL.COM", password=PASSWORD) == victim
    response = client.post(reverse("account_login"), {"login": "victim.user@gmail.com", "password": PASSWORD})
    assert response.status_code == 302
    other = User.objects.exclude(pk=victim.pk).get()
    assert other.email == "victim.user@xn--gmal-nza.com"
    assert authenticate(username="victim.user@gmaıl.com", password=PASSWORD + "!") == other


@pytest.mark.parametrize("spelling", ["kate@sec.test", "kate@ſec.test", "KATE@ｓec.test"])
def test_dashboard_login_with_any_spelling_logs_the_user_in(client, kate, spelling):
    response = client.post(reverse("account_login"), {"login": spelling, "password": PASSWORD})

    assert response.status_code == 302
    assert client.get(reverse("dashboard:overview")).wsgi_request.user == kate


def test_dashboard_lockout_counts_every_lookalike_as_the_same_address(client, kate):
    # allauth's default: 5 failures per address in 5 minutes.
    for spelling in ["kate@ſec.test", "kate@ｓec.test", "KATE@sec.test", "kate@ſec.test", "kate@ｓec.test"]:
        response = client.post(reverse("account_login"), {"login": spelling, "password": "wrong guess"})
        assert response.status_code == 200

    response = client.post(reverse("account_login"), {"login": "kate@sec.test", "password": PASSWORD})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get(reverse("dashboard:overview")).status_code == 302


def test_password_reset_with_a_lookalike_mails_the_registered_address(client, kate):
    client.post(reverse("account_reset_password"), {"email": "KATE@ｓec.test"})

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["kate@sec.test"]


def test_adding_a_lookalike_of_another_users_address_keeps_it_canonical(client, kate):
    other = UserFactory(email="bob@example.test")
    client.force_login(other)

    # allauth (enumeration prevention) answers as if it worked, but the row it keeps is the
    # canonical address: unverified, never verifiable (one verified owner per address),
    # and no second spelling that lookups could confuse with Kate's.
    client.post(reverse("account_email"), {"action_add": "", "email": "kate@ｓec.test"})

    assert set(EmailAddress.objects.filter(user=other).values_list("email", "verified")) <= {
        ("bob@example.test", False),
        ("bob@example.test", True),
        ("kate@sec.test", False),
    }
    client.logout()
    response = client.post(reverse("account_login"), {"login": "kate@ｓec.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("dashboard:overview")).wsgi_request.user == kate


# --- the admin ----------------------------------------------------------------------------------------


def test_the_admin_refuses_a_lookalike_of_an_existing_user(admin_client, kate):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {"email": "kate@ſec.test", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email="kate@sec.test").count() == 1


def test_the_admin_stores_new_users_in_canonical_form(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {"email": "Nova@ｓec.test", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.filter(email="nova@sec.test").exists()


# --- the migration ----------------------------------------------------------------------------------

MIGRATION = ("accounts", "0005_security_canonical_email_token_version")
BEFORE = [
    ("accounts", "0004_syncflow_sync_jobs"),
    ("account", "0009_emailaddress_unique_primary_email"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_canonicalises_existing_addresses():
    old = _migrate(BEFORE)
    OldUser = old.get_model("accounts", "User")
    OldEmailAddress = old.get_model("account", "EmailAddress")
    try:
        user = OldUser.objects.create(email="kate@ｓec.test", password="x")
        OldEmailAddress.objects.create(user_id=user.pk, email="kate@ｓec.test", primary=True, verified=True)
        OldEmailAddress.objects.create(user_id=user.pk, email="KATE@sec.test", primary=False, verified=False)
        new = _migrate([MIGRATION])

        assert new.get_model("accounts", "User").objects.get(pk=user.pk).email == "kate@sec.test"
        assert list(EmailAddress.objects.values_list("email", "primary", "verified")) == [
            ("kate@sec.test", True, True)
        ]
    finally:
        _migrate(_leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_reports_lookalike_users_and_stops(capsys):
    old = _migrate(BEFORE)
    OldUser = old.get_model("accounts", "User")
    victim = OldUser.objects.create(email="bf@sec.test", password="x")
    lookalike = OldUser.objects.create(email="bf@ſec.test", password="x")
    try:
        with pytest.raises(RuntimeError, match=rf"bf@sec\.test: user ids \[{victim.pk}, {lookalike.pk}\]"):
            _migrate([MIGRATION])
        assert f"[{victim.pk}, {lookalike.pk}]" in capsys.readouterr().out
        # Nothing was merged or dropped.
        assert set(OldUser.objects.values_list("email", flat=True)) == {"bf@sec.test", "bf@ſec.test"}
    finally:
        OldUser.objects.filter(pk=lookalike.pk).delete()
        _migrate(_leaf_nodes())


def _leaf_nodes():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
