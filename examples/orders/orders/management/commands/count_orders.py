from django.core.management.base import BaseCommand

from orders.models import Order


class Command(BaseCommand):
    help = "Print how many orders there are and how many are done (a scheduled job of the example)."

    def handle(self, *args, **options):
        self.stdout.write(f"orders: {Order.objects.count()}, done: {Order.objects.exclude(done=None).count()}")
