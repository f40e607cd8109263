"""POST /api/ml-accounts/:id/reconnect-link: a reconnect link for the store's owner (issue 16)."""

from rest_framework import serializers

from accounts import services
from accounts.roles import Can
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import api_operation, envelope_of
from mlaccounts.api.views import ACCOUNTS, AccountView


class ReconnectLinkSerializer(serializers.Serializer):
    url = serializers.URLField(
        read_only=True,
        help_text="The page that takes the store's owner through Mercado Livre's authorization; its "
        "last path segment is the token. Shown only now.",
    )
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)


ReconnectLinkResponse = envelope_of("ReconnectLinkResponse", ReconnectLinkSerializer())


class MLAccountReconnectLinkView(AccountView):
    """Make a single-use reconnect link for an account (manager and up)."""

    @api_operation(
        operation_id="createMlAccountReconnectLink",
        summary="Make a reconnect link for the store's owner",
        description="A single-use link, valid 7 days, to send to whoever holds the store's Mercado "
        "Livre login: they need no user here. It takes them through Mercado Livre's authorization, "
        "and the account gets the new token pair back (status `active`, next sync due now) only "
        "when they authorize as this account's own seller; another seller changes nothing. Every "
        "call makes a new link; links made earlier stay valid until used or expired. Manager or "
        "owner.",
        tag=ACCOUNTS,
        ok={201: ReconnectLinkResponse},
        errors={404: ("NOT_FOUND",)},
        account_id=True,
    )
    def post(self, request, id):
        account = self.get_account(id, Can.MANAGE)
        link, token = services.reconnect_link_create(account=account, by=request.user)
        data = {"url": services.reconnect_link_url(token, request=request), "expires_at": link.expires_at}
        return envelope(ReconnectLinkSerializer(data).data, status_code=201)
