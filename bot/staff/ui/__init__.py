"""The admin UI at /admin: server-rendered pages (Jinja2), a little plain JavaScript, no CDN.

Every page checks the session and the role first (bot/staff/auth.py); every form is read only through
`checked_form`, which verifies its CSRF token. The acting user is always the signed-in one.
"""

from fastapi import APIRouter

from bot.staff.ui import admin, articles, care, questions, signin
from bot.staff.ui.pages import NotFound, error_page, not_found_page

router = APIRouter()
for part in (signin, articles, questions, care, admin):
    router.include_router(part.router)

__all__ = ["NotFound", "error_page", "not_found_page", "router"]
