"""django-allauth's hooks (settings.ACCOUNT_ADAPTER): addresses in their canonical form,
the product's name in emails.

allauth lower()s an address and then compares it exactly with the stored one (users and
its EmailAddress rows alike). Returning the canonical form from clean_email (sign-up,
adding an address, password reset) makes every one of those comparisons canonical, since
users are stored in that form (accounts.emails). The dashboard's login goes through the
authentication backends, whose get_by_natural_key canonicalises too.
"""

from __future__ import annotations

from types import SimpleNamespace

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.emails import InvalidEmail, canonical_email, email_key


class AccountAdapter(DefaultAccountAdapter):
    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        try:
            return canonical_email(email)
        except InvalidEmail:
            raise ValidationError(_("Enter a valid email address."), code="invalid") from None

    def save_user(self, request, user, form, commit=True):
        # Every user gets a personal workspace at sign-up (accounts.services.workspaces).
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            from accounts import services

            services.workspace_personal(user=user)
        return user

    def send_mail(self, template_prefix, email, context):
        # Without django.contrib.sites allauth names the site after the request's host
        # ("Hello from 127.0.0.1:8000!"): every email names the product (SITE_NAME) instead,
        # on the same domain. The subject prefix is ACCOUNT_EMAIL_SUBJECT_PREFIX (settings).
        domain = get_current_site(allauth_context.request).domain
        site = SimpleNamespace(name=settings.SITE_NAME, domain=domain)
        super().send_mail(template_prefix, email, {"current_site": site, **context})

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # allauth's own key lower()s the login: `bf@ſec.test` would get a lockout of its own
        # beside `bf@sec.test`'s. One key per canonical address instead. (allauth has no
        # public hook for this key: if it renames this method, the look-alike lockout tests in
        # tests/accounts/test_emails.py and tests/mlaccounts/test_admin_login.py fail.)
        login = credentials.get("email", credentials.get("username", ""))
        return f"{get_current_site(request).domain}:{email_key(login or '')}"
