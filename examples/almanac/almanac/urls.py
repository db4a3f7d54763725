from django.urls import path

from almanac.views import index

urlpatterns = [path("", index)]
