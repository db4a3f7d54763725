from django.http import HttpResponse
from django.templatetags.static import static
from django.utils.html import format_html

MESSAGE = "Hello from djangohost"


def home(request):
    return HttpResponse(format_html(
        '<!doctype html><html><head><title>{app}</title>'
        '<link rel="stylesheet" href="{css}"></head>'
        '<body><h1 class="app-{app}">{message}</h1></body></html>',
        app="hello", css=static("hello/site.css"), message=MESSAGE,
    ))
