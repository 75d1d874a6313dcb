"""The widget's routes: the demo clinic page at `/`, the script and styles, and the texts it shows.

None of these carry patient data. Each counts against the caller's read allowance before it does anything
else (`RateLimits.read`), like every public endpoint checks who is calling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.api.deps import ClientDep, ServicesDep
from bot.channels.web.assets import load_assets
from bot.channels.web.texts import tel_uri, widget_config
from bot.http import content_security_policy
from bot.services import Services

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
)
ASSETS = load_assets()
# The demo page runs only our own script, so it can forbid every HTML-string sink outright (Trusted
# Types): a widget that ever wrote text as HTML would fail here, in the tests, not on a patient's screen.
DEMO_EXTRA_CSP = "require-trusted-types-for 'script'; trusted-types 'none'"

router = APIRouter(tags=["widget"])
AssetName = Annotated[str, PathParam(max_length=64, pattern=r"^[a-z0-9-]+\.(js|css|svg)$")]


def _allowed(services: Services, client: str) -> None:
    if not services.limits.read(client).allowed:
        raise HTTPException(
            status_code=429, detail=services.replies.text("slow_down"), headers={"Retry-After": "30"}
        )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo_page(
    request: Request,
    services: ServicesDep,
    client: ClientDep,
    color: Annotated[str | None, Query(pattern=r"^#[0-9A-Fa-f]{6}$")] = None,
    position: Annotated[Literal["left", "right"], Query()] = "right",
    name: Annotated[str | None, Query(max_length=60)] = None,
    lang: Annotated[str | None, Query(max_length=35, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> HTMLResponse:
    """A demo clinic website with the widget on it, embedded exactly as a clinic would embed it. The query
    previews the embed options: `?color=%23aa3377&position=left&name=Birchwood&lang=es`."""
    _allowed(services, client)
    clinic = services.clinic
    embed = {"position": position, "color": color, "clinic-name": name, "language": lang}
    page = TEMPLATES.get_template("demo.html").render(
        clinic=clinic,
        clinic_phone_uri=tel_uri(clinic.phone),
        emergency_uri=tel_uri(clinic.emergency_number),
        script_url=request.url_for("widget_asset", name="widget.js").path,
        style_url=request.url_for("widget_asset", name="demo.css").path,
        embed={key: value for key, value in embed.items() if value},
    )
    policy = content_security_policy(services.settings.frame_ancestors)
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": f"{policy}; {DEMO_EXTRA_CSP}"}
    return HTMLResponse(page, headers=headers)


@router.get("/widget/config", tags=["widget"])
async def config(
    services: ServicesDep,
    client: ClientDep,
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> JSONResponse:
    """The widget's fixed texts (knowledge/replies.yml), the clinic's phone numbers and its timings."""
    _allowed(services, client)
    return JSONResponse(widget_config(services, lang), headers={"Cache-Control": "public, max-age=60"})


@router.get("/widget/{name}", name="widget_asset", include_in_schema=False)
async def widget_asset(
    name: AssetName, request: Request, services: ServicesDep, client: ClientDep
) -> Response:
    """widget.js, widget.css and the demo page's styles."""
    _allowed(services, client)
    asset = ASSETS.get(name)
    if asset is None:
        raise HTTPException(status_code=404, detail="no such file")
    return asset.response(request)
