"""Celery for the orders project: the broker is the one djangohost gives the app (its own Redis,
CELERY_BROKER_URL in its environment, CELERY_* settings read from Django's settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders.settings")

app = Celery("orders")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["orders"])
