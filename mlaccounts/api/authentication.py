"""Bearer tokens for API clients: simplejwt access tokens (settings.SIMPLE_JWT).

Every token carries the user's api_token_version; logging out (POST /api/auth/logout or
the dashboard's sign-out) bumps the version, which revokes every token issued before.
"""

from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import AccessToken

TOKEN_VERSION_CLAIM = "ver"  # noqa: S105 - a claim name, not a secret


def access_token_for(user) -> str:
    """A signed access token for `user`, valid API_TOKEN_LIFETIME_HOURS (24 h by default).

    The token carries a hash of the password hash (CHECK_REVOKE_TOKEN), so a password
    change revokes every token issued before it, and the user's token version, so a
    logout does too.
    """
    token = AccessToken.for_user(user)
    token[TOKEN_VERSION_CLAIM] = user.api_token_version
    return str(token)


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's bearer authentication, refusing tokens of an older token version."""

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get(TOKEN_VERSION_CLAIM) != user.api_token_version:
            # DRF's own (translated) "Incorrect authentication credentials."
            raise AuthenticationFailed(code="token_revoked")
        return user
