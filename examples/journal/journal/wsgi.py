"""WSGI config for the journal: as Wagtail's project template writes it, naming the dev settings."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "journal.settings.dev")

application = get_wsgi_application()
