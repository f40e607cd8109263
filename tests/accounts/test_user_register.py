"""services.user_register: the dashboard sign-up's rules (django-allauth), for the REST API."""

import pytest
from allauth.account.models import EmailAddress
from django.db import IntegrityError

from accounts import services
from accounts.errors import AccountValidationError, EmailExists
from accounts.models import User

pytestmark = pytest.mark.django_db

STRONG = "a-long passphrase 4 tests"


def test_register_creates_the_user_and_its_primary_unverified_address():
    user = services.user_register(
        email="  Nova@Example.COM ", password=STRONG, first_name=" Nova ", last_name="Pessoa"
    )

    user.refresh_from_db()
    assert (user.email, user.first_name, user.last_name) == ("nova@example.com", "Nova", "Pessoa")
    assert user.check_password(STRONG)
    assert user.is_active and not user.is_staff
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == ("nova@example.com", True, False)


def test_register_refuses_an_email_in_use_case_insensitively(user):
    with pytest.raises(EmailExists):
        services.user_register(email="ALICE@example.com", password=STRONG)


def test_register_refuses_an_address_another_user_holds_in_allauth(user):
    EmailAddress.objects.create(user=user, email="second@example.com", primary=False, verified=True)

    with pytest.raises(EmailExists):
        services.user_register(email="Second@Example.com", password=STRONG)


def test_register_turns_a_lost_race_into_email_exists(monkeypatch):
    # Another sign-up inserted the address between the check and our insert.
    monkeypatch.setattr(services.users, "filter_users_by_email", lambda email: [])

    def create_user(*args, **kwargs):
        raise IntegrityError("user_email_ci_unique")

    monkeypatch.setattr(User.objects, "create_user", create_user)

    with pytest.raises(EmailExists):
        services.user_register(email="race@example.com", password=STRONG)


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"email": "nope", "password": STRONG}, {"email"}),
        ({"email": "", "password": STRONG}, {"email"}),
        ({"email": None, "password": None}, {"email", "password"}),
        ({"email": "a@example.com", "password": "short"}, {"password"}),
        ({"email": "a@example.com", "password": "password"}, {"password"}),
        ({"email": "a@example.com", "password": "1234567890123"}, {"password"}),
        ({"email": "joaozinho@example.com", "password": "joaozinho1"}, {"password"}),
        ({"email": "a@example.com", "password": "x" * 2000}, {"password"}),
        ({"email": "a@example.com", "password": STRONG, "first_name": "x" * 151}, {"first_name"}),
        ({"email": "a@example.com", "password": STRONG, "last_name": 5}, {"last_name"}),
    ],
)
def test_register_validates_by_field(kwargs, fields):
    with pytest.raises(AccountValidationError) as caught:
        services.user_register(**kwargs)

    assert set(caught.value.errors) == fields
    assert not User.objects.exists()
    assert not EmailAddress.objects.exists()


def test_register_checks_password_similarity_against_the_names():
    with pytest.raises(AccountValidationError) as caught:
        services.user_register(
            email="x@example.com", password="Fernanda Montenegro", first_name="Fernanda Montenegro"
        )

    assert "password" in caught.value.errors
