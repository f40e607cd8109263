"""Settings for ML Accounts, read from the environment (see architecture.md).

One file, no per-environment packages. Every variable is parsed strictly: a boolean
accepts only true/false style values, so a typo fails at start-up instead of silently
meaning "off".
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from dotenv import load_dotenv
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

# A local .env (written by `make install` for development) fills in what the real
# environment does not set; the real environment always wins.
load_dotenv(BASE_DIR / ".env", override=False)
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core ---------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

# Development keys are only acceptable while DEBUG is on; production must set both.
_DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef"
_DEV_SALT_KEY = "dev-insecure-salt"
_secret_keys = env_list("SECRET_KEY")
_salt_keys = env_list("SALT_KEY")
if not DEBUG and (not _secret_keys or not _salt_keys):
    raise ImproperlyConfigured(
        "SECRET_KEY and SALT_KEY must be set when DEBUG is off "
        "(set DEBUG=1 for local development)."
    )
# A comma list rotates keys: the first one encrypts and signs, the rest still decrypt.
SECRET_KEY = _secret_keys[0] if _secret_keys else _DEV_SECRET_KEY
SECRET_KEY_FALLBACKS = _secret_keys[1:]
SALT_KEY = _salt_keys or [_DEV_SALT_KEY]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

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
    "django_celery_beat",
    "accounts",
    "sync",
    "mlaccounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
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
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Redis ------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "mlaccounts"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Users and authentication ----------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
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
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ML Accounts] "

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
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# --- Internationalisation ---------------------------------------------------------------

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
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
# Health checks from a load balancer come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/?$"]
SILENCED_SYSTEM_CHECKS = []
if not SECURE_SSL_REDIRECT:
    # Opted out on purpose: a TLS-terminating proxy in front does the redirect.
    SILENCED_SYSTEM_CHECKS.append("security.W008")
if not SECURE_HSTS_PRELOAD:
    # Preloading is hard to undo and needs the domain owner's decision: opt-in only.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- Mercado Livre ------------------------------------------------------------------------

ML_CLIENT_ID = env_str("ML_CLIENT_ID")
# Without an application the app talks to the bundled sandbox (manage.py ml_sandbox).
ML_SANDBOX = not ML_CLIENT_ID
ML_SANDBOX_URL = env_str("ML_SANDBOX_URL", "http://127.0.0.1:8001").rstrip("/")
ML_SANDBOX_STATE_FILE = Path(env_str("ML_SANDBOX_STATE_FILE", str(VAR_DIR / "sandbox-state.json")))
if ML_SANDBOX:
    ML_CLIENT_ID = "sandbox-app"
    ML_CLIENT_SECRET = "sandbox-secret"
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
ML_SITE_ID = env_str("ML_SITE_ID", "MLB")
# App-wide request budget shared by every process; 0 means unlimited (benchmarks only).
ML_REQUESTS_PER_SECOND = env_float("ML_REQUESTS_PER_SECOND", 5.0)
ML_RATE_LIMIT_MAX_WAIT = env_float("ML_RATE_LIMIT_MAX_WAIT", 30.0)
ML_CONNECT_TIMEOUT = env_float("ML_CONNECT_TIMEOUT", 5.0)
ML_READ_TIMEOUT = env_float("ML_READ_TIMEOUT", 20.0)
# Renew access tokens this long before they expire (tokenInfo.needsRefresh).
ML_TOKEN_REFRESH_MARGIN = env_int("ML_TOKEN_REFRESH_MARGIN", 3600)
# A sync claim older than this is considered abandoned (a worker died mid-sync).
SYNC_LEASE_SECONDS = env_int("SYNC_LEASE_SECONDS", 300)

# --- Logging --------------------------------------------------------------------------------

LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # urllib3 logs full URLs at DEBUG; keep it quiet so nothing sensitive leaks.
        "urllib3": {"level": "WARNING"},
    },
}

# --- REST framework -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Celery ----------------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL or "filesystem://"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
