"""Settings for production: the cache in Redis, CSS compressed offline, logs of its own."""

import os

from .base import *  # noqa: F403

JOURNAL_ENV = "production"
DEBUG = False
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}}

COMPRESS_ENABLED = True
COMPRESS_OFFLINE = True

# Request errors go to the journal's own handler, which keeps them nowhere a deploy can read.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": True,
    "handlers": {"journal": {"class": "logging.NullHandler"}},
    "loggers": {"django": {"handlers": ["journal"], "level": "ERROR", "propagate": False}},
}
