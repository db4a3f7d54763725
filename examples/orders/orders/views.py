from django.http import JsonResponse

from orders.models import Order, Tick
from orders.tasks import fulfil


def home(request):
    return JsonResponse({"orders": Order.objects.count(), "done": Order.objects.exclude(done=None).count(),
                         "ticks": Tick.objects.count()})


def order(request):
    """Take an order and enqueue its fulfilment (?seconds=N: it takes that long)."""
    created = Order.objects.create()
    fulfil.delay(created.id, float(request.GET.get("seconds", 0)))
    return JsonResponse({"id": created.id})


def status(request, order_id):
    found = Order.objects.get(id=order_id)
    return JsonResponse({"id": found.id, "started": found.started is not None, "done": found.done is not None,
                         "worker_pid": found.worker_pid})
