import os

from django.http import HttpResponse
from django.templatetags.static import static
from django.utils.html import format_html

from goodbye.models import Visit

MESSAGE = "Goodbye from djangohost"


def home(request):
    Visit.objects.create()
    return HttpResponse(format_html(
        '<!doctype html><html><head><title>{app}</title>'
        '<link rel="stylesheet" href="{css}"></head>'
        '<body><h1 class="app-{app}">{message}</h1>'
        '<p>Visits: <span id="visits">{visits}</span></p>'
        '<p id="greeting">{greeting}</p></body></html>',
        app="goodbye", css=static("goodbye/site.css"), message=MESSAGE, visits=Visit.objects.count(),
        greeting=os.environ.get("GREETING", ""),
    ))
