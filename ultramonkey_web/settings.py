"""Settings, driven by environment variables so one build runs on a laptop, in CI and in compose.

SQLite by default; PostgreSQL (or anything dj-database-url knows) via DATABASE_URL. Redis via REDIS_URL
(``redis://host:port/db`` or ``unix:///path/redis.sock?db=0``), used for Celery and live stats.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from director import transport

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # A public fallback key would let anyone forge sessions and password-reset links, so outside development
    # (DEBUG=1) and the test runner (pytest sets PYTEST_VERSION) there is none: the process refuses to start.
    if not (DEBUG or "PYTEST_VERSION" in os.environ):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string (for example the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`), or set DEBUG=1 for development."
        )
    SECRET_KEY = "dev-only-insecure-key-change-me"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# HTTPS: off by default because the lab and `make run` serve plain HTTP on loopback; the README lists the
# production values (with them `manage.py check --deploy` is clean, tests/django/test_settings_deploy.py).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # only behind a proxy that sets X-Forwarded-Proto itself (and strips a client's)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (clusters.middleware.ContentSecurityPolicy): scripts, styles and requests from this
# origin only; no inline script, no eval (htmx runs with allowEval: false, see templates/base.html).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "ninja",  # django-ninja: its bundled Swagger UI files (served by whitenoise; no CDN, see /api/v1/docs)
    "clusters",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "clusters.middleware.ContentSecurityPolicy",
    # last, as django-axes asks: it turns a lockout raised during authentication into its answer
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # first: refuses a locked-out username/address before the password is even checked
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes, on the login page and the admin's alike): after AXES_FAILURE_LIMIT wrong
# passwords for one username from one address, that pair is refused for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

ROOT_URLCONF = "ultramonkey_web.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "ultramonkey_web.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}


def private_sqlite(path) -> None:
    """The SQLite file holds password hashes, token hashes, check passwords and pair secrets: create it mode
    0600 before SQLite does (SQLite would use the umask, often world-readable)."""
    path = str(path)
    if (
        path in ("", ":memory:")
        or path.startswith("file:")
        or not os.path.isdir(os.path.dirname(path) or ".")
    ):
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:  # a read-only checkout (the lab's guests): SQLite will say so if it is really used
        pass


if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    private_sqlite(DATABASES["default"]["NAME"])
else:
    # a test database of this process's own: two test runs against one server must not drop each other's
    DATABASES["default"]["TEST"] = {"NAME": f"test_umw_{os.getpid()}"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve static/ straight from the finders too, so a checkout works (and tests pass) before collectstatic.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A pasted configuration may be up to 4 MiB (clusters.importers.plan.MAX_FILE_BYTES) plus the other fields;
# a larger form body is refused with 400 before it is read. Uploaded files are counted separately.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 << 20

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# The central side's Redis user and password go in the URL: redis://central:PASSWORD@host:6379/0,
# rediss://... for TLS with REDIS_CA (private CA file) and, for mutual TLS, REDIS_CERT + REDIS_KEY.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TLS = transport.env_tls("REDIS_")
REDIS_OPTIONS = transport.redis_options(**REDIS_TLS)

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", transport.celery_url(REDIS_URL))
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", transport.celery_url(REDIS_URL))
CELERY_BROKER_USE_SSL = transport.celery_ssl(**REDIS_TLS)
CELERY_REDIS_BACKEND_USE_SSL = CELERY_BROKER_USE_SSL

# The central Ed25519 key ring that signs every desired state (director/signing.py): 0700 directory,
# made on first use. Agents hold its public key (`manage.py signing_key show`).
UMW_SIGNING_DIR = os.environ.get("UMW_SIGNING_DIR") or str(BASE_DIR / "var" / "signing")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Seconds without a heartbeat before an agent counts as stale / down on the overview.
AGENT_STALE_AFTER = int(os.environ.get("AGENT_STALE_AFTER", "15"))
AGENT_DOWN_AFTER = int(os.environ.get("AGENT_DOWN_AFTER", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# /metrics without a token: for a Prometheus on a trusted network that cannot send one. Off by default,
# because the metrics name every director, VIP and real server.
METRICS_ALLOW_ANONYMOUS = env_bool("UMW_METRICS_ANONYMOUS", False)
# Per-real-server series on /metrics (clusters/metrics.py): off leaves director and service series only,
# for directors with tens of thousands of reals (README, "API and metrics").
UMW_METRICS_REALSERVERS = env_bool("UMW_METRICS_REALSERVERS", True)
