"""Dashboard forms. They parse and check what a person typed; the services decide the rest."""

from allauth.account import forms as allauth_forms
from allauth.account.adapter import get_adapter as get_allauth_adapter
from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from accounts.errors import AccountValidationError
from accounts.mercadolivre import oauth
from accounts.models import MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, AccountType

MINUTES = "minutes"
SECONDS = "seconds"
UNIT_SECONDS = {MINUTES: 60, SECONDS: 1}


def add_service_errors(form: forms.Form, error: AccountValidationError, fields: dict[str, str]) -> None:
    """Show a service's AccountValidationError on the form: each message on its field.

    `fields` maps the service's field names to the form's; anything unmapped becomes a
    form-wide error, so no message is ever lost.
    """
    for name, messages in error.errors.items():
        target = fields.get(name, name)
        for message in messages:
            form.add_error(target if target in form.fields else None, message)
    if not error.errors:
        form.add_error(None, error.message)


class AccountSettingsForm(forms.Form):
    """Name, type, sync interval and alert flags of one account; the interval in minutes or seconds."""

    account_name = forms.CharField(label=_("Account name"), max_length=255, strip=True)
    account_type = forms.ChoiceField(label=_("Account type"), choices=AccountType.choices)
    interval_value = forms.IntegerField(
        label=_("Interval"),
        min_value=1,
        help_text=_("At least once a minute (60 seconds), at most once a week."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "input-short"}),
    )
    interval_unit = forms.ChoiceField(
        label=_("Unit"), choices=[(MINUTES, _("minutes")), (SECONDS, _("seconds"))], initial=MINUTES
    )
    notifications_enabled = forms.BooleanField(label=_("Raise alerts about this account"), required=False)
    email_notifications_enabled = forms.BooleanField(
        label=_("Email them too, to the members who chose email"), required=False
    )

    # Service field name -> form field name, for add_service_errors.
    SERVICE_FIELDS = {"sync_interval": "interval_value"}

    @classmethod
    def initial_for(cls, account) -> dict:
        seconds = account.sync_interval
        if seconds % 60 == 0:
            value, unit = seconds // 60, MINUTES
        else:
            value, unit = seconds, SECONDS
        return {
            "account_name": account.account_name,
            "account_type": account.account_type,
            "interval_value": value,
            "interval_unit": unit,
            "notifications_enabled": account.notifications_enabled,
            "email_notifications_enabled": account.email_notifications_enabled,
        }

    def clean(self):
        cleaned = super().clean()
        value, unit = cleaned.get("interval_value"), cleaned.get("interval_unit")
        if value is None or unit is None:
            return cleaned
        seconds = value * UNIT_SECONDS[unit]
        if seconds < MIN_SYNC_INTERVAL:
            self.add_error(
                "interval_value",
                _("Sync at most once a minute: enter at least 1 minute (60 seconds)."),
            )
        elif seconds > MAX_SYNC_INTERVAL:
            self.add_error(
                "interval_value",
                _("Sync at least once a week: enter at most %(minutes)d minutes (7 days).")
                % {"minutes": MAX_SYNC_INTERVAL // 60},
            )
        else:
            cleaned["sync_interval"] = seconds
        return cleaned


class SiteForm(forms.Form):
    """The Mercado Livre country to connect a seller from (Brazil first)."""

    site = forms.ChoiceField(label=_("Country"), choices=oauth.SITES)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"site": settings.ML_SITE_ID})
        kwargs.setdefault("auto_id", "connect-%s")
        super().__init__(*args, **kwargs)


class _SecretInput(forms.PasswordInput):
    """A password-type input for a pasted token, kept after a validation error.

    Rendered back only to the person who just pasted it, in the answer to their own POST
    (the view sends it with no-store and hides it from error reports), so one mistyped
    field does not make them paste both tokens again. Browsers must not offer to save it.
    """

    def __init__(self):
        super().__init__(render_value=True, attrs={"autocomplete": "off", "spellcheck": "false"})


class TokenConnectForm(forms.Form):
    """Connect a seller with a token pair obtained elsewhere (the advanced path).

    Only the country and the access token are required: a user id, nickname or email left
    empty is read from Mercado Livre with the token, an expiry left empty is six hours from
    now (accounts.services.mlaccount_connect_pasted).
    """

    site = forms.ChoiceField(label=_("Country"), choices=oauth.SITES)
    ml_user_id = forms.CharField(
        label=_("Mercado Livre user id"),
        max_length=19,
        required=False,
        validators=[RegexValidator(r"^[0-9]+$", _("Use digits only."))],
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("The seller's numeric id, the user_id of the token answer."),
    )
    nickname = forms.CharField(label=_("Nickname"), max_length=255, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    access_token = forms.CharField(label=_("Access token"), max_length=2000, widget=_SecretInput())
    refresh_token = forms.CharField(
        label=_("Refresh token"),
        max_length=2000,
        required=False,
        widget=_SecretInput(),
        help_text=_("Without it the access token cannot be renewed and the account must be reconnected."),
    )
    token_expires_at = forms.DateTimeField(
        label=_("Access token expires at"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("In your time zone. Mercado Livre access tokens last 6 hours."),
    )
    account_name = forms.CharField(
        label=_("Account name"),
        max_length=255,
        required=False,
        help_text=_("Optional; the nickname when left empty."),
    )
    account_type = forms.ChoiceField(
        label=_("Account type"), choices=AccountType.choices, initial=AccountType.INDIVIDUAL
    )

    SERVICE_FIELDS = {"site_id": "site"}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"site": settings.ML_SITE_ID})
        # Distinct ids from the OAuth site picker on the same page.
        kwargs.setdefault("auto_id", "token-%s")
        super().__init__(*args, **kwargs)


class ResetPasswordForm(allauth_forms.ResetPasswordForm):
    """allauth's form, mailing the address as registered (canonical) rather than as typed."""

    def clean_email(self):
        super().clean_email()
        return get_allauth_adapter().clean_email(self.cleaned_data["email"])


# --- workspaces ------------------------------------------------------------------------------


class WorkspaceForm(forms.Form):
    """Create or rename a workspace."""

    name = forms.CharField(label=_("Workspace name"), max_length=100, strip=True)


ALL_ACCOUNTS = "all"
CHOSEN_ACCOUNTS = "chosen"


class MemberAccessForm(forms.Form):
    """A role and an account scope: every account of the workspace, or the ones chosen.

    Used to invite (with `email`) and to change a member's access (without it).
    """

    role = forms.ChoiceField(label=_("Role"))
    scope = forms.ChoiceField(
        label=_("Accounts"),
        choices=[(ALL_ACCOUNTS, _("Every account of the workspace")), (CHOSEN_ACCOUNTS, _("Only these:"))],
        initial=ALL_ACCOUNTS,
        widget=forms.RadioSelect,
    )
    accounts = forms.MultipleChoiceField(
        label=_("Chosen accounts"), required=False, widget=forms.CheckboxSelectMultiple
    )

    # Service field name -> form field name, for add_service_errors.
    SERVICE_FIELDS = {"account_ids": "accounts"}

    def __init__(self, *args, workspace_accounts=(), with_email=False, **kwargs):
        from accounts.models import Role

        super().__init__(*args, **kwargs)
        self.fields["role"].choices = Role.choices
        self.fields["accounts"].choices = [(str(a.pk), a.account_name) for a in workspace_accounts]
        if with_email:
            # The most common invitation; an owner is a deliberate choice, never the default.
            self.fields["role"].initial = Role.OPERATOR
            self.fields = {
                "email": forms.EmailField(label=_("Email address"), max_length=254),
                **self.fields,
            }

    def account_ids(self):
        """None (every account) or the chosen ids, as the services take them."""
        if self.cleaned_data["scope"] == ALL_ACCOUNTS:
            return None
        return list(self.cleaned_data["accounts"])
