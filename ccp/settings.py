"""CCP settings, read from the environment through django-environ.

Every variable is listed in the README with its default. Production (DEBUG off) refuses to start
without SECRET_KEY and CCP_ENCRYPTION_KEYS; a local first run (DEBUG on) generates them once into var/.
"""

import ipaddress
import os
import re
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CCP_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
env.read_env(BASE_DIR / ".env.ccp", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _local_key(name: str, make) -> str:
    """Read var/<name>, creating it on the first local run (never in production, never in git)."""
    path = VAR_DIR / name
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = make()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    print(
        f"ccp: generated {name} into {path} (local first run; set it in the environment for production)",
        file=sys.stderr,
    )
    return value


def _required_secret(var: str, name: str, make) -> str:
    value = env.str(var, default="")
    if value:
        return value
    if DEBUG:
        return _local_key(name, make)
    raise ImproperlyConfigured(
        f"{var} is not set. Production (DEBUG off) needs it in the environment; "
        f"for a local run set DEBUG=1 and CCP will generate one into var/."
    )


def _new_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = _required_secret("SECRET_KEY", "secret_key", _new_secret_key)
CCP_ENCRYPTION_KEYS = [
    k.strip()
    for k in _required_secret("CCP_ENCRYPTION_KEYS", "encryption_keys", _new_fernet_key).split(",")
    if k.strip()
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "instances",
    "upgrades",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware (its HTTPS redirect and headers apply to static files too), before
    # everything else, so a static file costs no session or database work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ccp.urls"
WSGI_APPLICATION = "ccp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ccp" / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ccp.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share one file: wait for the lock instead of failing, and take the write
    # lock at BEGIN so two writers never deadlock on an upgrade from a read lock.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
# The web process serves collectstatic's output itself (WhiteNoise), with gzip/brotli copies made by
# collectstatic; no separate static server is needed. Not the manifest storage: it would make every page
# fail until collectstatic has run, which a test run or a first local run never does.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:
    # A local run serves static files from the apps (WhiteNoise's finders); an empty STATIC_ROOT keeps it
    # from warning that collectstatic never ran.
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)

# --- CCP ----------------------------------------------------------------------------------------
BACKUP_ROOT = Path(env.str("BACKUP_ROOT", default=str(VAR_DIR / "backups")))
CCP_TEMPLATE_ROOT = Path(env.str("CCP_TEMPLATE_ROOT", default=str(BASE_DIR / "deploy_templates")))
CCP_DEFAULT_TEMPLATE_SET = env.str("CCP_DEFAULT_TEMPLATE_SET", default="campaign")
CCP_IMAGE_REGISTRY = env.str("CCP_IMAGE_REGISTRY", default="registry.example.com/campaign")
CCP_LOCK_STALE_SECONDS = env.int("CCP_LOCK_STALE_SECONDS", default=120)
CCP_LOCK_HEARTBEAT_SECONDS = env.float("CCP_LOCK_HEARTBEAT_SECONDS", default=10.0)
# A running operation's own database writes (steps, final status, lock) ride out an outage this long.
CCP_DB_RETRY_SECONDS = env.int("CCP_DB_RETRY_SECONDS", default=60)
CCP_MIN_FREE_DISK_MB = env.int("CCP_MIN_FREE_DISK_MB", default=1024)
CCP_HEALTH_TIMEOUT = env.int("CCP_HEALTH_TIMEOUT", default=60)
# Upgrade steps: another timeout than the one the mode declares, per step key (README "Architecture"),
# e.g. CCP_STEP_TIMEOUTS=run_script=43200,pull_images=1800.
CCP_STEP_TIMEOUTS = {key.strip(): float(seconds) for key, seconds in env.dict("CCP_STEP_TIMEOUTS", default={}).items()}
# The Quick-upgrade page lists the registry's tags (Registry HTTP API v2 tags/list): cached this long, asked this long.
CCP_REGISTRY_TAGS_CACHE_SECONDS = env.int("CCP_REGISTRY_TAGS_CACHE_SECONDS", default=60)
CCP_REGISTRY_TAGS_TIMEOUT = env.float("CCP_REGISTRY_TAGS_TIMEOUT", default=5.0)
CCP_REGISTRY_TAGS = env.str("CCP_REGISTRY_TAGS", default="on")  # on | loopback | off
# A multi-instance preview runs on a worker, nodes in parallel, at most this many instances per node.
CCP_PREVIEW_PER_NODE = env.int("CCP_PREVIEW_PER_NODE", default=4)
# Rollouts: at most this many upgrades at a time on one node (a rollout may set its own); how often the
# driver looks at a running rollout; how long an instance whose turn came may stay locked by another
# operation before it counts as failed.
CCP_ROLLOUT_PER_NODE_LIMIT = env.int("CCP_ROLLOUT_PER_NODE_LIMIT", default=1)
CCP_ROLLOUT_TICK_SECONDS = env.float("CCP_ROLLOUT_TICK_SECONDS", default=5.0)
CCP_ROLLOUT_LOCK_WAIT_SECONDS = env.int("CCP_ROLLOUT_LOCK_WAIT_SECONDS", default=600)
# Protected paths are compared by a listing of stat data (cost independent of their size); on, their
# content is also hashed in full before (overlapped with the pull) and after every upgrade.
CCP_PROTECTED_FULL_HASH = env.bool("CCP_PROTECTED_FULL_HASH", default=False)
# Backups (README "Backups"): keep the newest N per label, and the newest of each day for D days.
CCP_BACKUP_KEEP_PER_LABEL = env.int("CCP_BACKUP_KEEP_PER_LABEL", default=7)
CCP_BACKUP_KEEP_DAILY_DAYS = env.int("CCP_BACKUP_KEEP_DAILY_DAYS", default=14)
# Two runs of the nightly backup within this many seconds (two beats firing the same tick) are one.
CCP_BACKUP_SCHEDULE_DEDUP_SECONDS = env.int("CCP_BACKUP_SCHEDULE_DEDUP_SECONDS", default=300)
CCP_BACKUP_COMMAND_TIMEOUT = env.int("CCP_BACKUP_COMMAND_TIMEOUT", default=120)
CCP_RESTORE_UP_TIMEOUT = env.int("CCP_RESTORE_UP_TIMEOUT", default=600)
# Notifications (README "Notifications"): attempts per delivery, the first retry's delay (doubled after
# each failure), the panel's address for links in messages, and when a missing nightly backup is reported.
CCP_NOTIFY_MAX_ATTEMPTS = max(1, env.int("CCP_NOTIFY_MAX_ATTEMPTS", default=5))
CCP_NOTIFY_RETRY_SECONDS = env.float("CCP_NOTIFY_RETRY_SECONDS", default=30.0)
# Sent and failed deliveries older than this are deleted by the every-10-minutes sweep (0: kept forever).
CCP_NOTIFY_KEEP_DAYS = max(0, env.int("CCP_NOTIFY_KEEP_DAYS", default=90))
CCP_PUBLIC_URL = env.str("CCP_PUBLIC_URL", default="")
CCP_BACKUP_MISSED_HOURS = env.float("CCP_BACKUP_MISSED_HOURS", default=26.0)
# The panel's own e-mail (Django's backend), used by `djangomail://` notification targets: e.g.
# EMAIL_URL=smtp+tls://user:password@smtp.example.org:587 (django-environ's e-mail URL).
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ccp@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Where backups are kept (README "Backups"): empty = the local folder BACKUP_ROOT; a folder path; or
# s3://bucket/prefix (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the host's role).
CCP_BACKUP_STORAGE = env.str("CCP_BACKUP_STORAGE", default="")
if CCP_BACKUP_STORAGE.startswith("s3://") and not CCP_BACKUP_STORAGE.removeprefix("s3://").partition("/")[0]:
    raise ImproperlyConfigured("CCP_BACKUP_STORAGE names no bucket; write s3://bucket/prefix.")
CCP_S3_ENDPOINT_URL = env.str("CCP_S3_ENDPOINT_URL", default="")  # empty: AWS itself
CCP_S3_REGION = env.str("CCP_S3_REGION", default=env.str("AWS_DEFAULT_REGION", default=""))
# Encryption at rest (age): archives are encrypted to these public keys (age1…, comma-separated); the
# identity file (the private key) is needed by the workers to restore, and only there.
CCP_BACKUP_AGE_RECIPIENTS = env.list("CCP_BACKUP_AGE_RECIPIENTS", default=[])
CCP_BACKUP_AGE_IDENTITY_FILE = env.str("CCP_BACKUP_AGE_IDENTITY_FILE", default="")
# Panel-host access (README "Security model"): the local driver runs tenant commands as the panel's own
# user, so it is off unless the operator of the panel host turns it on; key files must live in one folder.
CCP_ALLOW_LOCAL_DRIVER = env.bool("CCP_ALLOW_LOCAL_DRIVER", default=False)
CCP_SSH_KEY_DIR = env.str("CCP_SSH_KEY_DIR", default="")
# The OpenAPI schema and its docs page describe every endpoint: only for signed-in users unless this is on.
CCP_PUBLIC_SCHEMA = env.bool("CCP_PUBLIC_SCHEMA", default=False)

# /metrics (README "Metrics"): refused to everyone unless a token or networks are set.
CCP_METRICS_TOKEN = env.str("CCP_METRICS_TOKEN", default="")
if CCP_METRICS_TOKEN and len(CCP_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "CCP_METRICS_TOKEN is shorter than 32 characters; make one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
    )


def _networks(values: list[str]) -> list:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"CCP_METRICS_ALLOWED_NETWORKS: {value.strip()!r} is not an IP address or network "
                f"(write 192.0.2.0/24, 127.0.0.1 or ::1, separated by commas)."
            ) from None
    return networks


CCP_METRICS_ALLOWED_NETWORKS = _networks([v for v in env.list("CCP_METRICS_ALLOWED_NETWORKS", default=[]) if v.strip()])

# --- HTTPS (production sits behind a TLS proxy; see README "Security model") ---------------------
# Off in DEBUG (make run serves plain http on 127.0.0.1); on by default in production.
_proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="" if DEBUG else "HTTP_X_FORWARDED_PROTO")
SECURE_PROXY_SSL_HEADER = (_proxy_header, "https") if _proxy_header else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Prometheus scrapes the web process directly in plain http (README "Metrics"); a redirect would break it.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with a WWW-Authenticate header, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["ccp.api.permissions.ModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ccp.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CCP fleet control panel API",
    "DESCRIPTION": "Nodes, instances, releases and the operations on them.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets ship with the package: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Upgrades and their steps appear in two components each (the list and the detail): name their
    # status choices once, rather than by a hash.
    "ENUM_NAME_OVERRIDES": {
        "UpgradeStatusEnum": "upgrades.choices.UpgradeStatus",
        "StepStatusEnum": "upgrades.choices.StepStatus",
        "InstanceStatusEnum": "instances.choices.InstanceStatus",
        "RolloutStatusEnum": "upgrades.rollouts.choices.RolloutStatus",
        "RolloutItemStatusEnum": "upgrades.rollouts.choices.RolloutItemStatus",
    },
    "SERVE_PERMISSIONS": ["ccp.api.permissions.SchemaAccess"],
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or env.str("REDIS_URL", default="")
if not CELERY_BROKER_URL:
    # No server configured: an embedded broker on the local file system, good for one host (kombu's
    # file-system transport, each message written whole: ccp/broker_fs.py).
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "ccpfs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        # kombu polls the folder once a second by default: a queued task waited up to 1 s to start.
        "polling_interval": 0.1,
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3 * 3600 - 60)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Queues by node (README "Queues: workers near their nodes"): node name -> queue, e.g.
# CCP_NODE_QUEUES=node-a=site-east,node-b=site-east. A task on any other node uses the default queue.
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
CCP_NODE_QUEUES = {node.strip(): queue.strip() for node, queue in env.dict("CCP_NODE_QUEUES", default={}).items()}
for _node, _queue in CCP_NODE_QUEUES.items():
    if not _QUEUE_NAME.fullmatch(_queue) or not _node:
        raise ImproperlyConfigured(
            f"CCP_NODE_QUEUES: {_node}={_queue} is not a node name and a queue name (letters, digits, '.', "
            f"'_' and '-'); write node-a=site-east,node-b=site-east."
        )
CELERY_TASK_ROUTES = ("ccp.routing.route_by_node",)
# Long operations must never run twice. A task is acknowledged when a worker starts it (acks_late
# off), so a worker that dies mid-upgrade does not cause the broker to hand the upgrade to another
# worker beside a job that may still be running on the node; Redis' visibility timeout then only
# applies to messages not yet started. Orphans are found by the reconciler below and resumed (full
# upgrades re-attach to their detached job) or marked interrupted. See README "Celery and long operations".
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_BEAT_SCHEDULE = {
    "reconcile-stale-locks": {"task": "instances.tasks.reconcile_task", "schedule": 60.0},
    "backups-missed-check": {"task": "instances.backups.tasks.backups_missed_check_task", "schedule": 3600.0},
    "notifications-resend-stale": {
        "task": "instances.notifications.tasks.notification_resend_stale_task",
        "schedule": 600.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}, "null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # apprise logs notification URLs (credentials) at debug level, urllib3 their paths: never to the console.
    # A delivery captures apprise's warnings itself and stores them with the URL's parts hidden.
    "loggers": {
        "apprise": {"handlers": ["null"], "propagate": False, "level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
