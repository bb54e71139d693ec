"""The Celery app a separate `celery worker` process runs in test_celery_worker_process.py.

Configured from the environment: ERRLINK_TEST_BROKER_DIR (kombu's filesystem transport, no
server), ERRLINK_TEST_DSN (the test's collector), ERRLINK_TEST_START_METHOD (how the pool starts
its children) and ERRLINK_TEST_OWN_LOGGING (set: the application configures logging itself, as
Django projects do, replacing every handler). Deliveries are slowed down, as over a slow
network, so that an event only arrives from a pool child that flushes before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
from typing import Any

from celery import Celery, signals
from celery.utils.log import get_task_logger

import errlink
from errlink import Dsn, TransportResponse
from errlink._delivery.http import HttpTransport
from errlink._wire.envelope import Envelope
from errlink.integrations.celery import setup

BROKER_DIR = os.environ["ERRLINK_TEST_BROKER_DIR"]
DSN = os.environ["ERRLINK_TEST_DSN"]
SEND_DELAY_SECONDS = 0.5


class SlowNetworkTransport:
    def __init__(self, dsn: str) -> None:
        self._http = HttpTransport(Dsn.parse(dsn))

    async def send(self, envelope: Envelope) -> TransportResponse:
        await asyncio.sleep(SEND_DELAY_SECONDS)
        return await self._http.send(envelope)

    async def aclose(self) -> None:
        await self._http.aclose()


app = Celery("errlink_prefork_test")
app.conf.update(
    broker_url="filesystem://",
    broker_transport="_celery_fs_transport:Transport",
    broker_transport_options={
        "data_folder_in": BROKER_DIR,
        "data_folder_out": BROKER_DIR,
        "processed_folder": os.path.join(BROKER_DIR, "processed"),
        # kombu writes its exchange table to ./control otherwise: keep it out of the work tree
        "control_folder": os.path.join(BROKER_DIR, "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    },
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_pool_start_method=os.environ.get("ERRLINK_TEST_START_METHOD", "fork"),
)
setup(app, dsn=DSN, transport=SlowNetworkTransport(DSN), environment="celery-prefork")

if os.environ.get("ERRLINK_TEST_OWN_LOGGING"):

    @signals.setup_logging.connect
    def configure_logging(**_: Any) -> None:
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
                "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
                "root": {"handlers": ["console"], "level": "INFO"},
            }
        )


task_logger = get_task_logger(__name__)


@app.task(name="orders.charge")
def charge(order_id: int, *, card: dict[str, Any]) -> None:
    errlink.set_tag("worker_pid", os.getpid())
    task_logger.info("charging order %s", order_id)
    logging.getLogger("shop.payments").warning("gateway slow for order %s", order_id)
    raise ValueError(f"card declined for order {order_id}")


@app.task(
    name="orders.sync_stock",
    autoretry_for=(ConnectionError,),
    max_retries=2,
    default_retry_delay=0,
)
def sync_stock() -> None:
    raise ConnectionError("stock service unreachable")


@app.task(name="orders.ping")
def ping() -> str:
    return "pong"
