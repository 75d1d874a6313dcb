"""The unanswered questions page: groups, linked to an article or turned into a draft."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bot.staff.auth import (
    RuntimeDep,
    checked_form,
)
from bot.staff.ui.pages import (
    QuestionsStaff,
    back,
    page,
)

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)


# --- unanswered questions ------------------------------------------------------------------------------
@router.get("/questions")
async def questions(request: Request, runtime: RuntimeDep, user: QuestionsStaff) -> HTMLResponse:
    groups = await asyncio.to_thread(runtime.unanswered.groups)
    article_ids = [state.id for state in runtime.articles.states()]
    return page(request, "questions.html", user, groups=groups, article_ids=article_ids)


@router.post("/questions/{group_id}/link")
async def link_group(request: Request, group_id: int, runtime: RuntimeDep, user: QuestionsStaff) -> Response:
    form = await checked_form(request, runtime)
    article_id = str(form.get("article_id", ""))[:80]
    if runtime.articles.state(article_id) is None:
        return back("/admin/questions", "refused", detail=f"there is no article '{article_id}'")
    if not runtime.unanswered.resolve(group_id, article_id, user.actor, "linked"):
        return back("/admin/questions", "refused", detail="that group was already dealt with")
    return back("/admin/questions", "linked")
