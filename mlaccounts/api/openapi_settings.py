"""drf-spectacular's settings (settings.SPECTACULAR_SETTINGS): static, so kept out of the
env-driven settings file. Imports nothing: settings.py reads it before Django is set up."""

OPENAPI_SETTINGS = {
    "TITLE": "ML Accounts API",
    "DESCRIPTION": (
        "Manage many Mercado Livre seller accounts. Every answer is an envelope: "
        '`{"success": true, "data": …, "message"?: …}` or '
        '`{"success": false, "message": …, "code": …, "errors"?: {field: [messages]}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Separate request and response components: write-only tokens, read-only ids.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.AccountStatus",
        "AccountTypeEnum": "accounts.models.AccountType",
        "LastSyncStatusEnum": ["success", "failed", "in_progress"],
        # The envelope's `success` constants (true on success, false on failure).
        "SuccessTrueEnum": "mlaccounts.api.schema.SUCCESS_TRUE_CHOICES",
        "SuccessFalseEnum": "mlaccounts.api.schema.SUCCESS_FALSE_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mlaccounts.api.schema.postprocess_paths",
    ],
}
