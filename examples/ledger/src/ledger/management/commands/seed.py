"""A release command: records the release it ran in."""

from pathlib import Path

from django.core.management.base import BaseCommand

from ledger.models import Seed


class Command(BaseCommand):
    help = "Record the release this command ran in."

    def handle(self, *args, **options):
        Seed.objects.create(release=Path.cwd().parent.name)
        self.stdout.write(f"seeded {Seed.objects.count()}")
