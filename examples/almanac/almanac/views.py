import importlib.util

import humanize
from django.http import HttpResponse


def index(request):
    # humanize comes from poetry.lock; pytest is a dev dependency, which a server does not get.
    dev = "present" if importlib.util.find_spec("pytest") else "absent"
    return HttpResponse(f"<p id='count'>{humanize.intcomma(1234567)}</p><p id='dev'>{dev}</p>")
