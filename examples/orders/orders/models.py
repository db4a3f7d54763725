from django.db import models


class Order(models.Model):
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True)
    done = models.DateTimeField(null=True)
    worker_pid = models.IntegerField(null=True)


class Tick(models.Model):
    at = models.DateTimeField(auto_now_add=True)
