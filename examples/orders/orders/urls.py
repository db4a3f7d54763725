from django.urls import path

from orders import views

urlpatterns = [
    path("", views.home),
    path("order/", views.order),
    path("order/<int:order_id>/", views.status),
]
