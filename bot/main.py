"""The clinic app: the only public surface of the assistant."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot import services as services_module
from bot.api import chat, conversations, staff, webhook
from bot.escalation.outbox import OutboxWorker
from bot.pipeline import ChatPipeline
from bot.services import Services, build_services
from bot.settings import Settings, get_settings

log = logging.getLogger(__name__)


def configure_logging() -> None:
    """Our loggers at INFO (ids, levels, counts: never patient text); chatty libraries at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and a webhook URL can carry a secret.
    for noisy in ("httpx", "httpcore", "sentence_transformers", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; `services` may be given ready-made (tests), otherwise they are built at start-up."""
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ready = services or build_services(settings or get_settings())
        services_module.install(ready)
        app.state.services = ready
        app.state.pipeline = ChatPipeline(ready)
        outbox = OutboxWorker.from_services(ready)
        outbox.start(ready.settings.outbox_poll_seconds)
        unsubscribe = ready.escalations.subscribe(outbox.wake)
        yield
        unsubscribe()
        await outbox.stop()
        await ready.rasa.close()

    app = FastAPI(
        title="Microneedling patient assistant",
        description="Patient questions before and after microneedling, answered from the clinic's guidance.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(chat.router)
    app.include_router(webhook.router)
    app.include_router(conversations.router)
    app.include_router(staff.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    # Say which field is wrong without echoing the patient's text back into logs or responses.
    problems = [
        {"field": ".".join(str(p) for p in e["loc"][1:]), "problem": e["msg"]} for e in error.errors()
    ]
    return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.error("unexpected error on %s: %s", request.url.path, type(error).__name__, exc_info=error)
    return JSONResponse({"detail": "internal error; please call the clinic"}, status_code=500)
