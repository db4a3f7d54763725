from django.conf import settings
from django.shortcuts import render


def home(request):
    return render(request, "journal/index.html", {"env": settings.JOURNAL_ENV, "visits": request.visits})
