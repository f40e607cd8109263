"""Rows for tests. Tokens are recognisable so leak checks can search for them."""

from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import AccountEvent, MLAccount, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Ana"
    last_name = "Souza"
    password = factory.django.Password("correct horse battery staple")


class MLAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MLAccount

    owner = factory.SubFactory(UserFactory)
    ml_user_id = factory.Sequence(lambda n: 4_000_000_000 + n)
    nickname = factory.Sequence(lambda n: f"SELLER{n}")
    email = factory.LazyAttribute(lambda o: f"{o.nickname.lower()}@example.com")
    site_id = "MLB"
    account_name = factory.LazyAttribute(lambda o: o.nickname)
    access_token = factory.Sequence(lambda n: f"APP_USR-TESTACCESS-{n:06d}-secretaccess")
    refresh_token = factory.Sequence(lambda n: f"TG-TESTREFRESH-{n:06d}-secretrefresh")
    token_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=6))
    token_obtained_at = factory.LazyFunction(timezone.now)
    next_sync = factory.LazyFunction(timezone.now)


class AccountEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountEvent

    account = factory.SubFactory(MLAccountFactory)
    kind = AccountEvent.Kind.UNAVAILABLE
    message = "Mercado Livre answered 503"
    http_status = 503
