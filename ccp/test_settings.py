"""Settings for the test suite: the real settings with keys made for the run (never production ones)."""

import os

from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "tests-only-" + Fernet.generate_key().decode())
os.environ.setdefault("CCP_ENCRYPTION_KEYS", Fernet.generate_key().decode())

from ccp.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
