from django.urls import path

from chat import views

urlpatterns = [
    path("", views.home),
    path("health/", views.health),
    path("stream/", views.stream),
]
