from django.core.files.storage import default_storage
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from catalog.models import Product


def index(request):
    return render(request, "catalog/index.html", {"products": Product.objects.order_by("name")})


def search(request):
    # Full-text search: a lookup that django.contrib.postgres registers.
    found = Product.objects.filter(name__search=request.GET.get("q", ""))
    return JsonResponse({"found": [product.name for product in found]})


@csrf_exempt
def upload(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    stored = default_storage.save(request.FILES["file"].name, request.FILES["file"])
    return JsonResponse({"url": default_storage.url(stored)})
