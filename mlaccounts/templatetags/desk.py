"""Template filters of the seller's desk: claims in the seller's words, and links to ML."""

from django import template
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.mercadolivre.oauth import SITE_AUTH_HOSTS

register = template.Library()

# §4.4's claim types and stages, and who ML says must act (`action_responsible`).
CLAIM_TYPES = {
    "mediations": _("Complaint"),
    "return": _("Return"),
    "fulfillment": _("Fulfillment"),
    "ml_case": _("Mercado Livre case"),
    "cancel_sale": _("Sale cancellation"),
    "cancel_purchase": _("Purchase cancellation"),
    # A context: the admin has its own "Exchange" (a token exchange), translated otherwise.
    "change": pgettext_lazy("claim type", "Exchange"),
    "service": _("Service"),
}
CLAIM_STAGES = {
    "claim": _("Between you and the buyer"),
    "dispute": _("Mediated by Mercado Livre"),
    "recontact": _("Reopened"),
    "stale": _("Stalled"),
    "none": _("None"),
}
CLAIM_ACTORS = {"seller": _("You"), "buyer": _("The buyer"), "mediator": _("Mercado Livre")}
# Spanish-speaking sites name the sales pages in Spanish.
_PORTUGUESE_SITES = {"MLB"}


@register.filter
def claim_type(value: str) -> str:
    return str(CLAIM_TYPES.get(value, value or "—"))


@register.filter
def claim_stage(value: str) -> str:
    return str(CLAIM_STAGES.get(value, value or "—"))


@register.filter
def claim_actor(value: str) -> str:
    return str(CLAIM_ACTORS.get(value, value))


def site_home(site_id: str) -> str:
    """The site's public address (www. on the host sellers authorize at, §8)."""
    host = SITE_AUTH_HOSTS.get(site_id, SITE_AUTH_HOSTS["MLB"])
    return host.replace("https://auth.", "https://www.", 1)


@register.filter
def claim_url(claim) -> str:
    """Where the seller handles the claim at ML: the sale's page, which shows its claim.

    ML documents no public address of a claim itself; sellers reach a claim from the sale
    (`/vendas/{order}/detalhe`, in Spanish `/ventas/{order}/detalle`). Without an order,
    the sales list.
    """
    site = claim.account.site_id
    home = site_home(site)
    sales, detail = ("vendas", "detalhe") if site in _PORTUGUESE_SITES else ("ventas", "detalle")
    if claim.order_id:
        return f"{home}/{sales}/{claim.order_id}/{detail}"
    return f"{home}/{sales}/omni/lista"
