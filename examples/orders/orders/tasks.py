import os
import time

from celery import shared_task
from django.utils import timezone

from orders.models import Order, Tick


@shared_task
def fulfil(order_id: int, seconds: float = 0) -> None:
    """Work on an order for `seconds`, then mark it done."""
    Order.objects.filter(id=order_id).update(started=timezone.now(), worker_pid=os.getpid())
    time.sleep(seconds)
    Order.objects.filter(id=order_id).update(done=timezone.now())


@shared_task
def tick() -> None:
    """Beat sends one every two seconds."""
    Tick.objects.create()
