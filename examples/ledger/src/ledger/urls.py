from django.urls import path

from ledger.views import home, login

urlpatterns = [path("", home), path("login/", login)]
