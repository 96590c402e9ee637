"""An event example: a job started by an app's own event, with a payload schema.

    client.send_event("order.placed", {"order_id": 7, "amount": 12.5}, id="order-7")
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from examples.app import client
from trigger_celery import RetryOptions, event_trigger


class OrderPlaced(BaseModel):
    order_id: int
    amount: float = Field(gt=0)


@client.define_job(id="order-receipt", name="Send an order receipt", version="1.0.0",
                   trigger=event_trigger("order.placed", schema=OrderPlaced))
def order_receipt(payload: OrderPlaced, io, ctx):
    total = io.run_task("total", lambda: round(payload.amount * 1.2, 2), name="Add VAT")
    receipt = io.run_task(
        "receipt", lambda task: {"order": payload.order_id, "total": total,
                                 "idempotency_key": task.idempotency_key},
        retry=RetryOptions(limit=5, min_timeout_ms=1000))
    io.logger.info("receipt ready", order=payload.order_id, total=total)
    return receipt
