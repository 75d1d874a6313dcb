"""The clinic app: the only public surface of the assistant."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from bot import services as services_module
from bot.api import health, staff, webhook
from bot.channels import api as chat_api
from bot.channels.web import router as web_widget
from bot.channels.wiring import BODY_LIMITED_PATHS, include_texting_routes, start_texting
from bot.conversation.pipeline import ChatPipeline
from bot.conversation.sessions import SessionsUnavailable
from bot.http import BodySizeLimit, OneValuePerQueryParameter, SecurityHeaders, UnexpectedErrors
from bot.outbox.worker import OutboxWorker
from bot.schemas import COMMON_ERRORS
from bot.services import Services, build_services
from bot.settings import Settings, get_settings
from bot.staff import app as staff_app

log = logging.getLogger(__name__)


def configure_logging() -> None:
    """Our loggers at INFO (ids, levels, counts: never patient text); chatty libraries at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and a webhook URL can carry a secret.
    for noisy in ("httpx", "httpcore", "sentence_transformers", "faiss", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; `services` may be given ready-made (tests), otherwise they are built at start-up."""
    configure_logging()
    settings = services.settings if services is not None else (settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ready = services or build_services(settings)
        services_module.install(ready)
        app.state.services = ready
        app.state.pipeline = ChatPipeline(ready)
        # Texting channels (issue 11): before the outbox worker, which takes their senders.
        texting = start_texting(app, ready, app.state.pipeline)
        outbox = OutboxWorker.from_services(ready)
        outbox.start(ready.settings.outbox_poll_seconds)
        unsubscribe = ready.outbox.subscribe(outbox.wake)
        # Staff (issue 12): accounts, the article store, publishing and the knowledge sync thread.
        app.state.staff = staff_app.start(ready)
        log.info("clinic app ready")
        yield
        app.state.staff.stop()
        unsubscribe()
        if texting is not None:
            await texting.stop()  # replies of messages in hand are queued before the worker stops
        await outbox.stop()
        await ready.rasa.close()

    docs = bool(settings.docs_enabled)
    app = FastAPI(
        title="Microneedling patient assistant",
        description="Patient questions before and after microneedling, answered from the clinic's guidance.",
        version="0.2.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        responses=COMMON_ERRORS,  # hardening (issue 7): every error in the declared schema
    )
    app.include_router(chat_api.router)
    app.include_router(health.router)
    app.include_router(webhook.router)
    app.include_router(staff.router)
    # --- web chat widget: the demo clinic page at /, the script, styles and texts under /widget ---
    app.include_router(web_widget.router)
    include_texting_routes(app, settings)  # texting channels (issue 11): only the enabled ones
    staff_app.mount(app)  # Staff (issue 12): the admin UI and the knowledge-base API under /admin
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # --- hardening (issue 7): records down -> 503; middleware order, outermost last ---
    app.add_exception_handler(SessionsUnavailable, _records_unavailable)
    app.add_exception_handler(SQLAlchemyError, _records_unavailable)
    # Innermost: anything unexpected becomes a 500 in the error schema that still passes the headers below.
    app.add_middleware(UnexpectedErrors)
    # Before anything reads or parses the body. Rasa's action calls carry the conversation's events.
    larger = {
        "/webhook": 4_000_000,
        **dict.fromkeys(BODY_LIMITED_PATHS, settings.texting_max_body_bytes),
        # Staff (issue 12): guidance documents and article archives, then article texts.
        "/admin/kb/import": settings.max_upload_bytes,
        "/admin/articles-import": settings.max_upload_bytes,
        "/admin/articles": 1_000_000,
        "/admin/kb": 1_000_000,
    }
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=larger)
    app.add_middleware(OneValuePerQueryParameter)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # outside the size limit, so the clinic's site can read a 413 too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type", "x-session-token"],
            expose_headers=["retry-after"],
            max_age=600,
        )
    # Outermost: every response, refusals and errors included, carries the security headers.
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
    return app


async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    # Say which field is wrong without echoing the patient's text back into logs or responses.
    problems = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": _problem(e)}
        for e in error.errors()
    ]
    return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)


def _problem(error: dict) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type", "").startswith("date"):
        return f"{message}; dates are written YYYY-MM-DD"
    return message


async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    detail = error.detail if isinstance(error.detail, str) else "request refused"
    return JSONResponse(
        {"detail": detail, "problems": []},
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def _records_unavailable(request: Request, error: Exception) -> JSONResponse:
    """The database is locked, read-only or gone: say so, with the clinic's phone (chat still triages)."""
    route = getattr(request.scope.get("route"), "path", "unmatched route")
    log.error("records unavailable on %s: %s", route, type(error).__name__)
    services = getattr(request.app.state, "services", None)
    detail = services.replies.text("unavailable") if services else "unavailable; please call the clinic"
    return JSONResponse({"detail": detail, "problems": []}, status_code=503, headers={"Retry-After": "30"})
