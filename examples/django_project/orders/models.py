"""One model the task writes."""

from django.db import models


class Order(models.Model):
    """An order with a total."""

    total = models.IntegerField()
