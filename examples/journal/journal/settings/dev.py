"""Settings for a developer's machine."""

from .base import *  # noqa: F403

JOURNAL_ENV = "dev"
DEBUG = True
SECRET_KEY = "django-insecure-dev-only"
ALLOWED_HOSTS = ["*"]
COMPRESS_OFFLINE = False
