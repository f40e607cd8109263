"""Bearer tokens for API clients: simplejwt access tokens (settings.SIMPLE_JWT)."""

from rest_framework_simplejwt.tokens import AccessToken


def access_token_for(user) -> str:
    """A signed access token for `user`, valid API_TOKEN_LIFETIME_HOURS (24 h by default).

    The token carries a hash of the password hash (CHECK_REVOKE_TOKEN), so a password
    change revokes every token issued before it.
    """
    return str(AccessToken.for_user(user))
