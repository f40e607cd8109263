from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    # Not "Accounts": in Portuguese and Spanish that is allauth's section (email addresses).
    verbose_name = _("Users and Mercado Livre accounts")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from accounts import checks  # noqa: F401 (registers the system checks)

        user_logged_out.connect(_revoke_api_tokens, dispatch_uid="accounts.revoke_api_tokens")
        user_logged_in.connect(_record_sign_in, dispatch_uid="accounts.record_sign_in")


def _revoke_api_tokens(sender, request, user, **kwargs):
    # Signing out anywhere (the dashboard through allauth, the admin) ends the API's
    # bearer tokens too: a stolen token must not outlive the session its owner closed.
    # A signal rather than allauth's adapter, so that every logout path is covered.
    if user is not None:
        from accounts import services

        services.user_revoke_api_tokens(user=user)


def _record_sign_in(sender, request, user, **kwargs):
    # Every login() (allauth's dashboard sign-in, the admin's) is one audit entry; the API's
    # bearer-token login calls the service itself (it does not open a session).
    from django.urls import reverse

    from accounts import services

    admin = request is not None and request.path.startswith(reverse("admin:index"))
    via = "admin" if admin else "dashboard"
    services.user_signed_in(user=user, via=via)
