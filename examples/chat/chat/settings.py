"""A small Channels project: WebSockets (an echo, a broadcast group), a stream, no database."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "django-insecure-development-only"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "channels",
    "chat",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "chat.urls"
ASGI_APPLICATION = "chat.asgi.application"
# Development: one process. Deployed, djangohost puts the layer in the app's own Redis.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
DATABASES = {}
STATIC_URL = "static/"
USE_TZ = True
