import importlib.util

from dateutil.relativedelta import relativedelta
from django.http import HttpResponse


def index(request):
    # python-dateutil comes from Pipfile.lock; pytest is a dev package, which a server does not get.
    dev = "present" if importlib.util.find_spec("pytest") else "absent"
    return HttpResponse(f"<p id='months'>{relativedelta(months=14).normalized().years}</p><p id='dev'>{dev}</p>")
