"""Plugging the staff side into the clinic app: routes, static files, error pages, start and stop."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from bot.services import Services
from bot.staff import api, ui
from bot.staff.auth import CsrfFailed, Forbidden, LoginRequired
from bot.staff.runtime import StaffRuntime, build_runtime

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(ui.router)
    app.mount("/admin/static", StaticFiles(directory=STATIC), name="staff-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(CsrfFailed, _csrf_failed)
    app.add_exception_handler(ui.NotFound, ui.not_found_page)


def start(services: Services) -> StaffRuntime:
    runtime = build_runtime(services)
    runtime.start()
    return runtime


async def _login_required(request: Request, error: LoginRequired) -> RedirectResponse:
    target = error.next_path if error.next_path.startswith("/admin") and request.method == "GET" else "/admin"
    return RedirectResponse(f"/admin/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, error: Forbidden) -> HTMLResponse:
    return ui.error_page(request, 403, "forbidden")


async def _csrf_failed(request: Request, error: CsrfFailed) -> HTMLResponse:
    return ui.error_page(request, 403, "csrf")
