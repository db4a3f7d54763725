from django.db import models


class Seed(models.Model):
    """Written by the release command `seed`, once per release."""

    release = models.CharField(max_length=200)
