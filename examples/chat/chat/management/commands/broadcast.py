from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from chat.consumers import GROUP


class Command(BaseCommand):
    help = "Send a text to every client of the broadcast group, through the channel layer."

    def add_arguments(self, parser):
        parser.add_argument("text")

    def handle(self, *args, **options):
        async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "chat.message", "text": options["text"]})
        self.stdout.write(f"sent: {options['text']}")
