"""The admin login has the dashboard login's brute-force limits (issue 10.5)."""

import uuid

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": uuid.uuid4().hex}}
    else:
        cache.clear()


@pytest.fixture
def staff(db):
    return UserFactory(email="staff@sec.test", is_staff=True, is_superuser=True)


def _admin_login(email, password, ip="10.9.0.1"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(
        reverse("admin:login"), {"username": email, "password": password, "next": "/admin/"}
    )
    return client, response


def _error_codes(response):
    return [error.code for error in response.context["form"].non_field_errors().as_data()]


def _logged_in(client):
    return client.get(reverse("admin:index")).status_code == 200


def test_the_right_password_logs_in(staff):
    client, response = _admin_login("Staff@ſec.test", PASSWORD)

    assert response.status_code == 302
    assert _logged_in(client)


def test_after_five_failures_for_an_address_even_the_right_password_is_refused(staff):
    # Look-alike spellings and different IPs all count against the one address.
    for n, spelling in enumerate(
        ["staff@sec.test", "STAFF@sec.test", "staff@ſec.test", "staff@ｓec.test", "x"]
    ):
        email = spelling if spelling != "x" else "staff@sec.test"
        _, response = _admin_login(email, "wrong guess", ip=f"10.9.1.{n}")
        assert response.status_code == 200

    client, response = _admin_login("staff@sec.test", PASSWORD, ip="10.9.1.99")

    assert response.status_code == 200
    assert _error_codes(response) == ["too_many_login_attempts"]
    assert not _logged_in(client)


def test_failures_through_the_dashboard_count_for_the_admin_too(client, staff):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "staff@sec.test", "password": "wrong guess"})

    admin, response = _admin_login("staff@sec.test", PASSWORD, ip="10.9.2.1")

    assert _error_codes(response) == ["too_many_login_attempts"]
    assert not _logged_in(admin)


def test_one_ip_is_limited_whatever_the_addresses(staff):
    for n in range(10):
        _admin_login(f"someone{n}@sec.test", "wrong guess", ip="10.9.3.1")

    client, response = _admin_login("staff@sec.test", PASSWORD, ip="10.9.3.1")

    assert _error_codes(response) == ["too_many_login_attempts"]
    assert not _logged_in(client)
    # Another IP is not affected.
    client, _ = _admin_login("staff@sec.test", PASSWORD, ip="10.9.3.2")
    assert _logged_in(client)


def test_successful_logins_do_not_count(staff):
    for _ in range(7):
        _, response = _admin_login("staff@sec.test", PASSWORD)
        assert response.status_code == 302


def test_a_user_who_is_not_staff_is_refused(user):
    client, response = _admin_login(user.email, PASSWORD)

    assert response.status_code == 200
    assert not _logged_in(client)
