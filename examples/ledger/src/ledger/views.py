import gunicorn
from django.http import HttpResponse, HttpResponseRedirect

from ledger.models import Seed


def home(request):
    # Every page but the login page asks visitors to log in first.
    return HttpResponseRedirect("/login/?next=/")


def login(request):
    return HttpResponse(f"<p id='login'>Log in</p><p id='seeds'>{Seed.objects.count()}</p>"
                        f"<p id='gunicorn'>{gunicorn.__version__}</p>")
