from .base import *  # noqa: F403

DEBUG = True
SECRET_KEY = "django-insecure-dev-only"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
