from django.urls import path

from catalog import views

urlpatterns = [
    path("", views.index),
    path("search/", views.search),
    path("upload/", views.upload),
]
