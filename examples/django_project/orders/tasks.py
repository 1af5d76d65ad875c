"""Tasks of the orders app, as a Celery project writes them (imports changed)."""

from celeriac import shared_task
from celeriac.utils.log import get_task_logger

from .models import Order

logger = get_task_logger(__name__)


@shared_task
def record_order(total: int) -> int:
    """Write an Order row; return how many there are."""
    logger.info("recording order of %s", total)
    Order.objects.create(total=total)
    return Order.objects.count()
