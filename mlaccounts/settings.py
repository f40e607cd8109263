"""Settings for ML Accounts, read from the environment (see architecture.md).

One file, no per-environment packages. Every variable is parsed strictly by the helpers
of mlaccounts/env.py (a boolean accepts only true/false style values, so a typo fails at
start-up instead of silently meaning "off"), which also holds the rules for keys.
"""

import math
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from dotenv import load_dotenv

from mlaccounts import prometheus, sentry
from mlaccounts.api.openapi_settings import OPENAPI_SETTINGS
from mlaccounts.env import (
    DEV_SALT_KEY,
    DEV_SECRET_KEY,
    check_key_strength,
    env_bool,
    env_float,
    env_int,
    env_limits,
    env_list,
    env_rate,
    env_str,
)
from sync.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

# A local .env (written by `make install` for development) fills in what the real
# environment does not set; the real environment always wins.
load_dotenv(BASE_DIR / ".env", override=False)
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

# --- Core ---------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

_secret_keys = env_list("SECRET_KEY")
_salt_keys = env_list("SALT_KEY")
if not DEBUG and (not _secret_keys or not _salt_keys):
    raise ImproperlyConfigured(
        "SECRET_KEY and SALT_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
    )
if not DEBUG:
    check_key_strength("SECRET_KEY", _secret_keys)
    check_key_strength("SALT_KEY", _salt_keys)
# A comma list rotates keys: the first one encrypts and signs, the rest still decrypt.
SECRET_KEY = _secret_keys[0] if _secret_keys else DEV_SECRET_KEY
SECRET_KEY_FALLBACKS = _secret_keys[1:]
SALT_KEY = _salt_keys or [DEV_SALT_KEY]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Django's own page, but a refused POST to a reconnect link is logged without its token.
CSRF_FAILURE_VIEW = "mlaccounts.views.reconnect.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    # Swagger UI's files served from our own static files: /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "sync",
    "mlaccounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that can answer on its own (WhiteNoise, CommonMiddleware), so that
    # those answers carry the CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # pt-BR by default; the language switcher's cookie picks another (see the class).
    "mlaccounts.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Audit entries written during the request name its user, IP and user agent.
    "mlaccounts.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mlaccounts.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # A dashboard view that needed Redis while it was down: a 503 page, not a 500.
    "mlaccounts.middleware.ServiceUnavailableMiddleware",
    # Last, so it sees a view's exception first: anything under /api/ that escapes DRF's
    # own handler still answers in the API's envelope.
    "mlaccounts.api.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "mlaccounts.urls"
WSGI_APPLICATION = "mlaccounts.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "mlaccounts.context_processors.sandbox",
                "mlaccounts.context_processors.workspaces",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _database = dj_database_url.parse(DATABASE_URL)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default and an explicit sqlite:/// URL behave the same.
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _database["NAME"],
        "OPTIONS": {
            # make run puts a web server, a worker and beat on one file: WAL lets readers
            # run beside the writer, IMMEDIATE takes the write lock at BEGIN so two
            # writers queue instead of deadlocking on lock upgrade, and the timeout lets
            # them wait for each other instead of failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                "PRAGMA synchronous=NORMAL;"
                "PRAGMA busy_timeout=20000;"
                "PRAGMA foreign_keys=ON;"
            ),
        },
    }
# Keep a connection for a minute rather than one per request or task (the worker's
# reuse: see CELERY_DB_REUSE_MAX), checking it is alive before reusing it.
_database.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis ------------------------------------------------------------------


def redis_cache(url: str) -> dict:
    """The cache on Redis. It fails open while Redis is down (mlaccounts/outages.py): it
    holds only rate-limit counts and the jobs' heartbeat, and a lost count must not turn
    every login and API call into a 500."""
    return {
        "BACKEND": "mlaccounts.outages.FailOpenRedisCache",
        "LOCATION": url,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mlaccounts"),
    }


REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL)}
else:
    # Files, not process memory: under `make run` the web server, the worker and beat are
    # separate processes that must see one cache (throttle counts, the sync heartbeat).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
        }
    }

# --- Users and authentication ----------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# ModelBackend finds users through UserManager.get_by_natural_key: by the canonical
# email (accounts.emails). allauth's backend after it only matches exact addresses.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2 first (Django's recommendation); the others still verify old hashes and are
# upgraded to Argon2 at the next login. The system this replaces stored plain bcrypt
# ("$2b$..."): imported as "bcrypt$" + that hash, BCryptPasswordHasher verifies it.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "account_login"

# Addresses in their canonical form everywhere allauth looks them up (accounts/adapter.py).
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"reset_password": "mlaccounts.forms.ResetPasswordForm"}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
if ACCOUNT_EMAIL_VERIFICATION not in {"none", "optional", "mandatory"}:
    raise ImproperlyConfigured("ACCOUNT_EMAIL_VERIFICATION must be none, optional or mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
# The product's name in emails (allauth's greeting, the subject prefix) and the admin.
SITE_NAME = env_str("SITE_NAME").strip() or "ML Accounts"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
# The address people reach this installation at, for links built without a request (the
# reconnect links in alert emails, sent by the worker): scheme and host, no path.
SITE_URL = env_str("SITE_URL", "http://localhost:8000").strip().rstrip("/") or "http://localhost:8000"
if urlparse(SITE_URL).scheme not in {"http", "https"} or not urlparse(SITE_URL).netloc:
    raise ImproperlyConfigured(
        "SITE_URL must be an http:// or https:// address (https://accounts.example.com)"
    )

# --- Email ----------------------------------------------------------------------------

DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ML Accounts <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    # smtp://user:password@host:port, smtp+tls://… or smtp+ssl://…
    _email = urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or 25
    EMAIL_HOST_USER = _email.username or ""
    EMAIL_HOST_PASSWORD = _email.password or ""
    EMAIL_USE_TLS = _email.scheme == "smtp+tls"
    EMAIL_USE_SSL = _email.scheme == "smtp+ssl"
    # Invitations are sent from the web request that creates them: bounded below its timeout.
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# --- Internationalisation ---------------------------------------------------------------

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English")), ("es", _("Spanish"))]
# Our catalog is read last, so it wins over every app's own (allauth's, celery-beat's).
LOCALE_PATHS = [BASE_DIR / "locale"]
# English dates in an order nobody misreads (mlaccounts/formats/en/formats.py).
FORMAT_MODULE_PATH = ["mlaccounts.formats"]
TIME_ZONE = env_str("TIME_ZONE", "America/Sao_Paulo")
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Hashed, compressed names once collectstatic has run (deploys, the Docker image);
# before that (make run, tests) files are served straight from the finders.
_collected = env_bool("STATIC_MANIFEST", False) or (STATIC_ROOT / "staticfiles.json").exists()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if _collected
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not _collected

# --- Security (check --deploy clean; every knob overridable behind a TLS proxy) -----------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks from a load balancer come over plain HTTP, and so do scrapes of /metrics on a
# private network (a redirect would not keep its bearer token from having crossed in clear).
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^metrics/?$"]
SILENCED_SYSTEM_CHECKS = []
if not SECURE_SSL_REDIRECT:
    # Opted out on purpose: a TLS-terminating proxy in front does the redirect.
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if not SECURE_HSTS_PRELOAD:
    # Preloading is hard to undo and needs the domain owner's decision: opt-in only.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- Content-Security-Policy (django-csp) ---------------------------------------------------

# No inline scripts or styles anywhere in our pages (templates use static files only, and
# htmx's own indicator styles are switched off in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Listing thumbnails in the questions queue come from ML's image host.
        "img-src": ["'self'", "data:", "https://http2.mlstatic.com"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        # Filled in below the Mercado Livre settings: the connect form's redirect goes to
        # ML's authorization host, and browsers check form-action on redirects too.
        "form-action": ["'self'"],
    }
}
# Pages we do not write ourselves, and what they need (mlaccounts.middleware.CSPMiddleware).
CSP_PATH_UPDATES = {
    # The admin sets a few style="" attributes (collapsed fieldsets, widgets).
    "/admin/": {"style-src": ["'unsafe-inline'"]},
    # django-celery-beat's periodic task form starts its crontab widget with an inline script.
    "/admin/django_celery_beat/": {"style-src": ["'unsafe-inline'"], "script-src": ["'unsafe-inline'"]},
    # Swagger UI (drf-spectacular's split view: its scripts are files) has an inline <style>.
    "/api/docs": {"style-src": ["'unsafe-inline'"]},
}

# --- Mercado Livre ------------------------------------------------------------------------

ML_CLIENT_ID = env_str("ML_CLIENT_ID")
# Without an application the app talks to the bundled sandbox (manage.py ml_sandbox).
ML_SANDBOX = not ML_CLIENT_ID
ML_SANDBOX_URL = env_str("ML_SANDBOX_URL", "http://127.0.0.1:8001").rstrip("/")
ML_SANDBOX_STATE_FILE = Path(env_str("ML_SANDBOX_STATE_FILE", str(VAR_DIR / "sandbox-state.json")))
if ML_SANDBOX:
    from accounts.mercadolivre.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

    ML_CLIENT_ID = SANDBOX_CLIENT_ID
    ML_CLIENT_SECRET = SANDBOX_CLIENT_SECRET
    ML_API_URL = env_str("ML_API_URL", ML_SANDBOX_URL).rstrip("/")
    ML_AUTH_URL = env_str("ML_AUTH_URL", ML_SANDBOX_URL).rstrip("/")
else:
    ML_CLIENT_SECRET = env_str("ML_CLIENT_SECRET")
    if not ML_CLIENT_SECRET:
        raise ImproperlyConfigured("ML_CLIENT_SECRET must be set together with ML_CLIENT_ID")
    ML_API_URL = env_str("ML_API_URL", "https://api.mercadolibre.com").rstrip("/")
    # Empty means: the authorization host of the site being connected (mercadolivre-api.md §8).
    ML_AUTH_URL = env_str("ML_AUTH_URL").rstrip("/")
ML_REDIRECT_URI = env_str("ML_REDIRECT_URI")
# Where the connect form may send the browser: the configured authorization host, else every
# site's host (accounts.mercadolivre.oauth.SITE_AUTH_HOSTS; a test keeps the two in step).
ML_AUTH_HOSTS = (
    [ML_AUTH_URL]
    if ML_AUTH_URL
    else [
        "https://auth.mercadolivre.com.br",
        "https://auth.mercadolibre.com.ar",
        "https://auth.mercadolibre.com.mx",
        "https://auth.mercadolibre.com.co",
        "https://auth.mercadolibre.cl",
        "https://auth.mercadolibre.com.uy",
        "https://auth.mercadolibre.com.pe",
        "https://auth.mercadolibre.com.ec",
        "https://auth.mercadolibre.com.ve",
        "https://auth.mercadolibre.com.cr",
        "https://auth.mercadolibre.com.pa",
        "https://auth.mercadolibre.com.do",
        "https://auth.mercadolibre.com.bo",
        "https://auth.mercadolibre.com.py",
        "https://auth.mercadolibre.com.gt",
        "https://auth.mercadolibre.com.hn",
        "https://auth.mercadolibre.com.ni",
        "https://auth.mercadolibre.com.sv",
        "https://global-selling.mercadolibre.com",
    ]
)
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] = ["'self'", *ML_AUTH_HOSTS]
ML_SITE_ID = env_str("ML_SITE_ID", "MLB")
# App-wide request budget shared by every process; 0 means unlimited (benchmarks only).
ML_REQUESTS_PER_SECOND = env_float("ML_REQUESTS_PER_SECOND", 5.0)
ML_RATE_LIMIT_MAX_WAIT = env_float("ML_RATE_LIMIT_MAX_WAIT", 30.0)
ML_CONNECT_TIMEOUT = env_float("ML_CONNECT_TIMEOUT", 5.0)
ML_READ_TIMEOUT = env_float("ML_READ_TIMEOUT", 20.0)
# Renew access tokens this long before they expire (tokenInfo.needsRefresh).
ML_TOKEN_REFRESH_MARGIN = env_int("ML_TOKEN_REFRESH_MARGIN", 3600)
# The longest a sync can run: sync.engine runs each one under this overall deadline,
# which cuts every ML timeout and budget wait inside it (accounts.mercadolivre.deadline).
# At the defaults: a token refresh (its budget wait, 30 s, + connect 5 + read 20) = 55 s,
# then four count calls of connect 5 + read 20 each = 100 s: 155 s. Budget waits for the
# counts and GET retries fit only in what the four calls leave unused; past the deadline
# the sync fails as "ML unavailable" and the task retries it later.
SYNC_DEADLINE_SECONDS = ML_RATE_LIMIT_MAX_WAIT + 5 * (ML_CONNECT_TIMEOUT + ML_READ_TIMEOUT)
# A sync claim older than this is abandoned (its worker died mid-sync): the dispatch job,
# every minute, frees it, records "interrupted; retrying" and makes the account due now.
# The deadline plus 45 s for the database writes around the ML calls (SQLite's busy
# timeout is 20 s a write): 200 s at the defaults, about 1.3 times the longest sync, so a
# killed worker's accounts are synced again within about 4 minutes. A sync never outlives
# its claim: a shorter SYNC_LEASE_SECONDS also cuts each sync's deadline to it.
SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", math.ceil(SYNC_DEADLINE_SECONDS) + 45)
if SYNC_LEASE_SECONDS < 1:
    raise ImproperlyConfigured("SYNC_LEASE_SECONDS must be at least 1")

# --- Mercado Livre notifications (sync/notifications.py) -----------------------------------------

# The secret path segment of the notifications callback, /webhooks/mercadolivre/<secret>/ (ML's
# notifications are unsigned, §6.1: the URL is the only credential). `make install` writes a
# random one into .env; unset, the endpoint answers 404 to everything and only polling runs.
ML_WEBHOOK_SECRET = env_str("ML_WEBHOOK_SECRET")
if ML_WEBHOOK_SECRET and (
    len(ML_WEBHOOK_SECRET) < 16 or not ML_WEBHOOK_SECRET.replace("-", "").replace("_", "").isalnum()
):
    raise ImproperlyConfigured(
        "ML_WEBHOOK_SECRET must be at least 16 characters of letters, digits, '-' and '_' "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
# The numeric APP ID of the application: notifications of another `application_id` are
# dropped. ML's client id is that number; the sandbox app has its own.
if ML_SANDBOX:
    from accounts.mercadolivre.sandbox import SANDBOX_APP

    ML_APPLICATION_ID = SANDBOX_APP.app_id
else:
    ML_APPLICATION_ID = int(ML_CLIENT_ID) if ML_CLIENT_ID.isdigit() else None
# Accounts whose notifications arrive are polled only this often, as a reconciliation.
ML_RECONCILE_INTERVAL = env_int("ML_RECONCILE_INTERVAL", 3600)
# An account with no notification for this long is polled at its own interval again; an
# installation that receives none for this long while polling finds changes is warned.
ML_NOTIFICATIONS_SILENT_AFTER = env_int("ML_NOTIFICATIONS_SILENT_AFTER", 2 * 3600)
# Notifications arriving within this many seconds for one account are processed together.
ML_NOTIFICATION_MERGE_SECONDS = env_float("ML_NOTIFICATION_MERGE_SECONDS", 1.0)
# Processing tries of a notification (failures retried with back-off) before it is `failed`.
ML_NOTIFICATION_MAX_TRIES = env_int("ML_NOTIFICATION_MAX_TRIES", 8)
# Stored notifications are deleted after this many days by the daily cleanup.
ML_NOTIFICATION_RETENTION_DAYS = env_int("ML_NOTIFICATION_RETENTION_DAYS", 7)
for _name in ("ML_RECONCILE_INTERVAL", "ML_NOTIFICATIONS_SILENT_AFTER", "ML_NOTIFICATION_MAX_TRIES"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")
if not 0 <= ML_NOTIFICATION_MERGE_SECONDS <= 60:
    raise ImproperlyConfigured("ML_NOTIFICATION_MERGE_SECONDS must be between 0 and 60")
# The sandbox (sandbox mode only) posts its notifications here: the app's own callback under
# `make run`; and its demo sellers make activity every this many seconds (0: none).
ML_SANDBOX_NOTIFICATIONS_URL = env_str(
    "ML_SANDBOX_NOTIFICATIONS_URL",
    f"http://127.0.0.1:8000/webhooks/mercadolivre/{ML_WEBHOOK_SECRET}/" if ML_WEBHOOK_SECRET else "",
)
ML_SANDBOX_ACTIVITY_SECONDS = env_float("ML_SANDBOX_ACTIVITY_SECONDS", 0.0)

# --- Operations: metrics and error reporting (docs/operations.md) ------------------------------

# GET /metrics (mlaccounts/metrics.py) answers only with `Authorization: Bearer <METRICS_TOKEN>`;
# unset, /metrics is off (404).
METRICS_TOKEN = env_str("METRICS_TOKEN").strip()
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )
# Several processes (gunicorn's workers, the Celery worker, beat) write their counters to
# files in this directory, which /metrics sums; unset, each process counts on its own (one
# process: tests, a single runserver). Chosen here, before any metric exists.
PROMETHEUS_MULTIPROC_DIR = prometheus.configure(env_str("PROMETHEUS_MULTIPROC_DIR"))
# Errors to Sentry, with tokens, secrets and cookies scrubbed (mlaccounts/sentry.py).
SENTRY_DSN = env_str("SENTRY_DSN").strip()
if SENTRY_DSN:
    sentry.init(dsn=SENTRY_DSN)

# --- Logging --------------------------------------------------------------------------------

LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)

# --- REST API (api-contract.md) --------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first: DRF takes the WWW-Authenticate header from the first class, and only
        # with one does it answer 401 (the contract) rather than 403 without credentials.
        "mlaccounts.api.authentication.JWTAuthentication",
        # The logged-in dashboard user; DRF enforces CSRF for it.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable API would answer outside the envelope; /api/docs/ is the UI.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["mlaccounts.api.parsers.JSONParser"],
    "DEFAULT_METADATA_CLASS": "mlaccounts.api.metadata.EnvelopeMetadata",
    "EXCEPTION_HANDLER": "mlaccounts.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["mlaccounts.api.throttles.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per user (per IP for anonymous callers) across the whole API.
        "user": env_rate("API_THROTTLE_USER", "600/min"),
        # Per user, for the calls that spend the app-wide ML budget (sync, sync-all, refresh):
        # one user must not be able to starve every other seller's syncs.
        "ml_action": env_rate("API_THROTTLE_ML_ACTION", "30/min"),
        # Per user, invitations sent (dashboard and API together): each one emails an address.
        "invite": env_rate("API_THROTTLE_INVITE", "30/hour"),
        "login_ip": env_rate("API_THROTTLE_LOGIN_IP", "10/min"),
        # Failed logins per email address: the brute-force guard.
        "login_failures": env_rate("API_THROTTLE_LOGIN_FAILURES", "5/min"),
        "register_ip": env_rate("API_THROTTLE_REGISTER_IP", "20/hour"),
        "register_email": env_rate("API_THROTTLE_REGISTER_EMAIL", "5/min"),
    },
    # Proxies in front of the app whose X-Forwarded-For entry is trusted. 0: use the socket
    # address; DRF's default (None) trusts whatever X-Forwarded-For a client sends, which
    # would let anyone dodge the per-IP limits.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The contract promises a bearer token valid for at least 24 hours; there is no refresh.
API_TOKEN_LIFETIME_HOURS = env_int("API_TOKEN_LIFETIME_HOURS", 24)
if API_TOKEN_LIFETIME_HOURS < 24:
    raise ImproperlyConfigured("API_TOKEN_LIFETIME_HOURS must be at least 24 (api-contract.md)")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(hours=API_TOKEN_LIFETIME_HOURS),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a hash of the password hash: changing the password revokes them.
    "CHECK_REVOKE_TOKEN": True,
    "UPDATE_LAST_LOGIN": False,
}

# Web requests that wait for Mercado Livre answer before the web server's timeout (30 s,
# gunicorn.conf.py): the API's synchronous "sync now" and the dashboard's "renew token" run
# under one overall deadline of SYNC_REQUEST_DEADLINE seconds (accounts.mercadolivre.deadline),
# and POST /api/ml-accounts/sync-all waits at most SYNC_ALL_TIMEOUT seconds for its queued
# syncs (those still running then are reported as TIMEOUT and finish in the worker).
SYNC_REQUEST_DEADLINE = env_float("SYNC_REQUEST_DEADLINE", 20.0)
SYNC_ALL_TIMEOUT = env_float("SYNC_ALL_TIMEOUT", 20.0)
if not 0 < SYNC_REQUEST_DEADLINE < 30 or not 0 < SYNC_ALL_TIMEOUT < 30:
    raise ImproperlyConfigured(
        "SYNC_REQUEST_DEADLINE and SYNC_ALL_TIMEOUT must be above 0 and below the web timeout (30 s)"
    )

# The reputation rates that keep each colour (accounts/reputation.py): unset, ML's published
# figures for Brazil. JSON: {"5_green": {"claims": 0.03, "delayed_handling": 0.15, ...}, ...}.
REPUTATION_LIMITS = env_limits("REPUTATION_LIMITS")

# The OpenAPI schema's settings are static: mlaccounts/api/openapi_settings.py.
SPECTACULAR_SETTINGS = OPENAPI_SETTINGS

# Cross-origin browser clients (the front end) may call /api/ only, from these origins.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["Retry-After", "WWW-Authenticate", "X-Request-ID"]

# --- Celery ----------------------------------------------------------------------------------

# Redis when REDIS_URL is set; otherwise kombu's filesystem transport (messages are files
# under var/celery/, created by mlaccounts/celery.py), so `make run` runs a real worker and
# a real beat with no server to install.
# (kombu warns about a filesystem URL without a host, hence the "localhost".)
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
if not REDIS_URL:
    _celery_dir = VAR_DIR / "celery"
    # kombu's filesystem transport, listing its folder once per batch of messages rather
    # than once per message (mlaccounts/broker.py).
    CELERY_BROKER_TRANSPORT = "mlaccounts.broker:FilesystemTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder for both directions: producers (web, beat) and the worker share it.
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "control_folder": str(_celery_dir / "control"),
        "polling_interval": 0.5,
    }
    # Remote control (celery inspect) broadcasts into every worker's queue file set, dead
    # workers' included, where nothing would ever read them: switched off on files.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    # kombu's Redis transport, fixed so that a worker survives Redis restarting under load
    # (mlaccounts/broker.py: celery/kombu#582, still in kombu 5.7.0).
    CELERY_BROKER_TRANSPORT = "mlaccounts.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # An unacknowledged message (acks_late, or a countdown waiting in the worker) goes
        # back to the queue after this long; it must exceed the longest task time limit
        # and the longest retry countdown, or a running task would be handed out twice.
        "visibility_timeout": 3600,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "retry_on_timeout": True,
        "health_check_interval": 25,
    }
# Keep retrying the broker at start and after it goes away (a Redis restart), forever.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Tasks take ids and plain values only (style.md): JSON both ways, nothing else accepted.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Outcomes live in the database (last_sync_status, AccountEvent): no result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# The queue every task goes to; a separate name lets two deployments (or the tests and
# the benchmark) share one Redis without taking each other's work.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# Defaults for any task that does not set its own (every task in sync/tasks.py does). The
# prefork pool enforces them; see CELERY_WORKER_POOL for the threads pool.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
# The work is I/O-bound: a sync spends ~95% of its time waiting on Mercado Livre (four
# HTTP calls) and the database. A threads pool keeps dozens of syncs waiting at once in
# one process (the GIL is released while waiting) for the memory of one, where prefork
# would need one ~70 MB process per concurrent sync. On 2 cores, with ML answering in
# ~50 ms, `make bench` measured 16 threads at ~36 syncs/s (waiting-bound), 32 at ~60 and
# 48 no faster with a worse p95 (one process is then CPU-bound, the other core serving
# the database and the broker): 32 it is. More cores: more worker processes (replicas).
# Each thread holds its own database connection: keep the sum over all workers within
# PostgreSQL's max_connections.
# Threads cannot be interrupted, so time limits are not enforced by this pool: every wait
# a sync makes is bounded instead (ML connect/read timeouts, ML_RATE_LIMIT_MAX_WAIT for
# the budget, Redis socket timeouts, SQLite's busy timeout).
CELERY_WORKER_POOL = env_str("CELERY_WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 32)
# A thread asks for at most 2 messages ahead (64 for 32 threads): enough to keep threads
# fed between broker round trips, small enough that a dying worker strands few messages
# and a second worker gets its share of a burst.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 2)
# Database connections in the worker: Celery's Django fixup closes every connection before
# and after each task unless CELERY_DB_REUSE_MAX is set, so each sync opened and closed a
# database session (on PostgreSQL a process fork and an authentication: 10,000 syncs,
# 10,000 sessions, ~7 ms of server CPU per sync). With it set, the fixup only closes the
# connection of whichever thread runs every N-th task, so mlaccounts/celery.py applies
# Django's own rule around each task instead, as a web request does: a connection is kept
# for CONN_MAX_AGE (above), health-checked before its first use in a task
# (CONN_HEALTH_CHECKS) and closed after an error, so a restarted database costs each
# thread a reconnection, not a failed sync.
# Each pool thread keeps its own connection: count CELERY_WORKER_CONCURRENCY per worker
# against PostgreSQL's max_connections.
CELERY_DB_REUSE_MAX = 1000
# Logs go through Django's LOGGING (JSON when LOG_FORMAT=json), not Celery's own setup.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A sync running when the broker connection drops finishes and saves its result; its
# message comes back after the visibility timeout and the sync simply runs again.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Scheduled syncs (sync/tasks.py). Retries of a rate-limited or unavailable sync wait
# about base × 2^attempt seconds, with jitter, or ML's Retry-After when it sends one.
SYNC_MAX_RETRIES = env_int("SYNC_MAX_RETRIES", 3)
SYNC_RETRY_BASE_SECONDS = env_float("SYNC_RETRY_BASE_SECONDS", 10.0)
# Share of ML_REQUESTS_PER_SECOND that scheduled syncs plan to use; the rest is left for
# token refreshes, "sync now" and webhook fetches, so planned work never hits the limit.
SYNC_BUDGET_SHARE = env_float("SYNC_BUDGET_SHARE", 0.95)
if not 0 < SYNC_BUDGET_SHARE <= 1:
    raise ImproperlyConfigured("SYNC_BUDGET_SHARE must be above 0 and at most 1")
