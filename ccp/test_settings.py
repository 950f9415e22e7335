"""Settings for the test suite: the real settings with keys made for the run (never production ones)."""

import os

from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "tests-only-" + Fernet.generate_key().decode())
os.environ.setdefault("CCP_ENCRYPTION_KEYS", Fernet.generate_key().decode())
# The suite talks plain http to its own servers, and most tests run tenants with the local driver; the
# key files of the testbed's nodes live under its state folder (tests/testbed/sshd.py).
for _name, _value in {
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_PROXY_SSL_HEADER": "",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "CCP_ALLOW_LOCAL_DRIVER": "1",
    # Only the testbed's loopback registry is ever asked for its tags: nothing may contact a public registry.
    "CCP_REGISTRY_TAGS": "loopback",
    "CCP_SSH_KEY_DIR": os.environ.get("CCP_TESTBED_STATE", "/run/ccp-testbed"),
}.items():
    os.environ.setdefault(_name, _value)

from ccp.settings import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's in-memory test database: threads and worker processes of a test must see
    # the same data, and concurrent writers must wait for the lock rather than fail.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests

# A queue of this test run's own: two runs sharing a broker (the file-system one in var/, or one
# Redis) must not take each other's tasks. Worker processes a test starts inherit it via the environment.
CELERY_TASK_DEFAULT_QUEUE = os.environ.setdefault("CCP_TEST_QUEUE", f"ccp-tests-{os.getpid()}")
