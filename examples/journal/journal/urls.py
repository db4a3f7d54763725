from django.urls import path

from journal.views import home

urlpatterns = [path("", home)]
