"""Admin pages for the knowledge base: list, editor, review and publish, history, try it, import."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bot.escalation import handoff
from bot.staff import audit
from bot.staff.accounts import UserInfo
from bot.staff.api import content_version, gate_json
from bot.staff.articles import Content, StoreError, problems
from bot.staff.auth import (
    RuntimeDep,
    checked_form,
    checked_header,
    may,
)
from bot.staff.catalogue import Filters, matching, topics
from bot.staff.models import ARTICLE_STATUSES
from bot.staff.publishing import GateRefused, NotAllowed
from bot.staff.runtime import StaffRuntime
from bot.staff.tryit import try_question
from bot.staff.ui.pages import (
    Anyone,
    Clinician,
    Editor,
    NotFound,
    Viewer,
    back,
    error_page,
    int_or_none,
    markdown,
    note_of,
    page,
)
from knowledge.articles import STAGES, ArticleError
from knowledge.diff import diff_text
from knowledge.exchange import export_archive, read_archive
from knowledge.importing import DocumentError, drafts, read_document

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)


# --- home ----------------------------------------------------------------------------------------------
@router.get("")
def home(request: Request, runtime: RuntimeDep, user: Anyone) -> HTMLResponse:
    states = runtime.articles.states() if may(user, "view") else []
    today = date.today()
    counts = {
        "in_review": sum(s.status == "in_review" for s in states),
        "drafts": sum(s.status == "draft" for s in states),
        "review_due": sum(s.review_due(today) for s in states),
        "articles": len(states),
    }
    if may(user, "care"):
        counts["open_escalations"] = runtime.services.escalations.open_count()
        counts["handoffs"] = len(handoff.handed_off(runtime.services.db))
    if may(user, "questions"):
        counts["question_groups"] = len(runtime.unanswered.groups())
    return page(request, "home.html", user, counts=counts)


# --- articles ------------------------------------------------------------------------------------------
@router.get("/kb")
def article_list(
    request: Request,
    runtime: RuntimeDep,
    user: Viewer,
    q: str = "",
    topic: str = "",
    stage: str = "",
    status: str = "",
    review: str = "",
) -> HTMLResponse:
    states = runtime.articles.states()
    filters = Filters(q, topic, stage, status, review).cleaned()
    return page(
        request,
        "articles.html",
        user,
        articles=matching(states, filters, date.today()),
        filters=filters,
        topics=topics(states),
        stages=STAGES,
        statuses=ARTICLE_STATUSES,
        today=date.today(),
    )


@router.get("/kb/new")
def new_article_form(
    request: Request, runtime: RuntimeDep, user: Editor, from_group: int | None = None
) -> HTMLResponse:
    group = runtime.unanswered.group(from_group) if from_group else None
    content = Content("", group.representative[:120] if group else "", "general", "general", None, "", "")
    return _editor(request, user, content, is_new=True, group=group)


@router.post("/kb/new")
async def create_article(request: Request, runtime: RuntimeDep, user: Editor) -> Response:
    form = await checked_form(request, runtime)
    content, errors = _content_from(form, str(form.get("id", "")).strip())
    group_id = int_or_none(form.get("from_group"))
    group = runtime.unanswered.group(group_id) if group_id else None
    if form.get("action") == "preview" or errors:
        return _editor(
            request,
            user,
            content,
            is_new=True,
            errors=errors,
            preview=True,
            group=group,
            status_code=422 if errors else 200,
        )
    try:
        runtime.articles.create(content, user.actor, note=note_of(form))
    except StoreError as error:
        return _editor(request, user, content, is_new=True, errors=[str(error)], group=group, status_code=422)
    if group is not None:
        runtime.unanswered.resolve(group.id, content.id, user.actor, "drafted")
    return back(f"/admin/kb/{content.id}", "created")


@router.get("/kb/try")
def try_form(request: Request, runtime: RuntimeDep, user: Viewer, content: str = "live") -> HTMLResponse:
    return page(request, "try.html", user, content=content, result=None, compare=None, form={})


@router.post("/kb/try")
async def try_it(request: Request, runtime: RuntimeDep, user: Viewer) -> HTMLResponse:
    form = await checked_form(request, runtime)
    question = str(form.get("question", "")).strip()[:2000]
    content = str(form.get("content", "live"))[:90]
    day, intent = int_or_none(form.get("day")), (str(form.get("intent", "")).strip()[:64] or None)
    values = {"question": question, "day": form.get("day", ""), "intent": intent or ""}
    if not question:
        return page(
            request,
            "try.html",
            user,
            content=content,
            result=None,
            compare=None,
            form=values,
            errors=["type a question"],
            status_code=422,
        )
    version = await asyncio.to_thread(content_version, runtime, content)
    result = await asyncio.to_thread(try_question, runtime.services, version, question, day, intent)
    compare = None
    if content != "live":
        compare = await asyncio.to_thread(
            try_question, runtime.services, runtime.live.current, question, day, intent
        )
    return page(request, "try.html", user, content=content, result=result, compare=compare, form=values)


@router.post("/kb/preview")
async def preview(request: Request, runtime: RuntimeDep, user: Editor) -> JSONResponse:
    """The editor's live preview: Markdown to HTML (the CSRF token comes in a header)."""
    await checked_header(request, runtime)
    data = await request.json()
    body = str(data.get("body", ""))[:50_000] if isinstance(data, dict) else ""
    return JSONResponse({"html": str(markdown(body))})


@router.get("/kb/import")
def import_page(request: Request, runtime: RuntimeDep, user: Editor) -> HTMLResponse:
    return page(request, "import.html", user, result=None)


@router.post("/kb/import/document")
async def import_document(request: Request, runtime: RuntimeDep, user: Editor) -> Response:
    form = await checked_form(request, runtime)
    upload = form.get("document")
    if upload is None or not hasattr(upload, "read"):
        return page(
            request, "import.html", user, errors=["choose a document to import"], result=None, status_code=422
        )
    data = await upload.read()
    try:
        sections = await asyncio.to_thread(read_document, upload.filename or "document", data)
        taken = [state.id for state in runtime.articles.states()]
        made = drafts(sections, taken)
        for article in made:
            runtime.articles.create(
                Content.from_article(article),
                user.actor,
                origin="document",
                note=f"imported from {upload.filename}"[:300],
            )
    except (DocumentError, StoreError) as error:
        return page(request, "import.html", user, errors=[str(error)], result=None, status_code=422)
    return page(
        request,
        "import.html",
        user,
        result={"created": [a.id for a in made], "updated": [], "unchanged": []},
        source=upload.filename,
    )


@router.post("/kb/import/articles")
async def import_article_files(request: Request, runtime: RuntimeDep, user: Editor) -> Response:
    form = await checked_form(request, runtime)
    upload = form.get("archive")
    if upload is None or not hasattr(upload, "read"):
        return page(
            request, "import.html", user, errors=["choose a .zip or .md file"], result=None, status_code=422
        )
    try:
        articles = read_archive(upload.filename or "articles.zip", await upload.read())
        result = await asyncio.to_thread(runtime.articles.import_articles, articles, user.actor)
    except (ArticleError, StoreError) as error:
        return page(
            request, "import.html", user, errors=str(error).splitlines(), result=None, status_code=422
        )
    return page(request, "import.html", user, result=result.__dict__, source=upload.filename)


@router.get("/kb/export")
def export(request: Request, runtime: RuntimeDep, user: Viewer) -> Response:
    data = export_archive(runtime.articles.export())
    audit.write(runtime.articles.db, user.actor, "exported", target_type="articles", target_id="all")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="articles.zip"'},
    )


@router.get("/kb/{article_id}")
def article_page(request: Request, article_id: str, runtime: RuntimeDep, user: Viewer) -> HTMLResponse:
    state = _state_or_404(runtime, article_id)
    return page(
        request,
        "article.html",
        user,
        article=state,
        today=date.today(),
        entries=audit.entries(runtime.articles.db, target_id=article_id, limit=20),
    )


@router.get("/kb/{article_id}/edit")
def edit_form(request: Request, article_id: str, runtime: RuntimeDep, user: Editor) -> HTMLResponse:
    state = _state_or_404(runtime, article_id)
    return _editor(request, user, state.head.content, base_version=state.head.version, article=state)


@router.post("/kb/{article_id}/edit")
async def save_article(request: Request, article_id: str, runtime: RuntimeDep, user: Editor) -> Response:
    state = _state_or_404(runtime, article_id)
    form = await checked_form(request, runtime)
    content, errors = _content_from(form, article_id)
    base = int_or_none(form.get("base_version"))
    if form.get("action") == "preview" or errors:
        return _editor(
            request,
            user,
            content,
            base_version=base,
            article=state,
            errors=errors,
            preview=True,
            status_code=422 if errors else 200,
        )
    try:
        version = runtime.articles.save(content, user.actor, base, note=note_of(form))
    except StoreError as error:
        return _editor(
            request, user, content, base_version=base, article=state, errors=[str(error)], status_code=409
        )
    if version is not None and form.get("action") == "submit":
        runtime.articles.submit(article_id, version, user.actor)
        return back(f"/admin/kb/{article_id}", "submitted")
    return back(f"/admin/kb/{article_id}", "saved" if version else "unchanged")


@router.post("/kb/{article_id}/submit")
async def submit(request: Request, article_id: str, runtime: RuntimeDep, user: Editor) -> Response:
    _state_or_404(runtime, article_id)
    form = await checked_form(request, runtime)
    try:
        runtime.articles.submit(article_id, int_or_none(form.get("version")) or 0, user.actor)
    except StoreError as error:
        return back(f"/admin/kb/{article_id}", "refused", detail=str(error))
    return back(f"/admin/kb/{article_id}", "submitted")


@router.get("/kb/{article_id}/review")
async def review(request: Request, article_id: str, runtime: RuntimeDep, user: Viewer) -> HTMLResponse:
    state = _state_or_404(runtime, article_id)
    publisher = runtime.require_publisher()
    report = await asyncio.to_thread(publisher.review, article_id, user.actor)
    old = state.published.content if state.published else None
    return page(
        request,
        "review.html",
        user,
        article=state,
        report=report,
        gate=gate_json(report),
        fields=_field_changes(old, state.head.content),
        blocks=diff_text(old.body if old else "", state.head.content.body),
        review_by=runtime.articles.new_review_by(date.today()).isoformat(),
    )


@router.post("/kb/{article_id}/publish")
async def publish(request: Request, article_id: str, runtime: RuntimeDep, user: Clinician) -> Response:
    _state_or_404(runtime, article_id)
    form = await checked_form(request, runtime)
    version = int_or_none(form.get("version")) or 0
    try:
        review_by = date.fromisoformat(str(form.get("review_by", "")))
    except ValueError:
        return back(f"/admin/kb/{article_id}/review", "refused", detail="the review-by date is not a date")
    publisher = runtime.require_publisher()
    try:
        await asyncio.to_thread(publisher.publish, article_id, version, user.actor, review_by, note_of(form))
    except GateRefused as refused:
        return back(f"/admin/kb/{article_id}/review", "gate_refused", detail=str(refused))
    except StoreError as error:
        return back(f"/admin/kb/{article_id}/review", "refused", detail=str(error))
    return back(f"/admin/kb/{article_id}", "published")


@router.post("/kb/{article_id}/send-back")
async def send_back(request: Request, article_id: str, runtime: RuntimeDep, user: Clinician) -> Response:
    _state_or_404(runtime, article_id)
    form = await checked_form(request, runtime)
    try:
        runtime.articles.send_back(
            article_id, int_or_none(form.get("version")) or 0, user.actor, note_of(form)
        )
    except StoreError as error:
        return back(f"/admin/kb/{article_id}", "refused", detail=str(error))
    return back(f"/admin/kb/{article_id}", "sent_back")


@router.post("/kb/{article_id}/retire")
async def retire(request: Request, article_id: str, runtime: RuntimeDep, user: Clinician) -> Response:
    _state_or_404(runtime, article_id)
    await checked_form(request, runtime)
    try:
        await asyncio.to_thread(runtime.require_publisher().retire, article_id, user.actor)
    except GateRefused as refused:
        return back(f"/admin/kb/{article_id}", "gate_refused", detail=str(refused))
    except StoreError as error:
        return back(f"/admin/kb/{article_id}", "refused", detail=str(error))
    return back(f"/admin/kb/{article_id}", "retired")


@router.get("/kb/{article_id}/history")
def history(
    request: Request,
    article_id: str,
    runtime: RuntimeDep,
    user: Viewer,
    a: int | None = None,
    b: int | None = None,
) -> HTMLResponse:
    state = _state_or_404(runtime, article_id)
    versions = runtime.articles.versions(article_id)
    numbers = [v.version for v in versions]
    b = b if b in numbers else state.head.version
    older = [n for n in numbers if n < b]
    a = a if a in numbers else (older[0] if older else b)
    old, new = runtime.articles.version(article_id, a), runtime.articles.version(article_id, b)
    return page(
        request,
        "history.html",
        user,
        article=state,
        versions=versions,
        a=a,
        b=b,
        signoffs=runtime.articles.signoffs(article_id),
        fields=_field_changes(old.content if old else None, new.content),
        blocks=diff_text(old.content.body if old else "", new.content.body),
    )


@router.post("/kb/{article_id}/rollback")
async def rollback(request: Request, article_id: str, runtime: RuntimeDep, user: Editor) -> Response:
    _state_or_404(runtime, article_id)
    form = await checked_form(request, runtime)
    live = form.get("publish") == "yes"
    if live and not may(user, "publish"):
        return error_page(request, 403, "forbidden")
    try:
        version, _ = await asyncio.to_thread(
            runtime.require_publisher().rollback,
            article_id,
            int_or_none(form.get("to_version")) or 0,
            user.actor,
            live,
        )
    except GateRefused as refused:
        return back(f"/admin/kb/{article_id}/history", "gate_refused", detail=str(refused))
    except (StoreError, NotAllowed) as error:
        return back(f"/admin/kb/{article_id}/history", "refused", detail=str(error))
    return back(f"/admin/kb/{article_id}", "rolled_back_live" if live else "rolled_back", version=version)


def _editor(
    request: Request,
    user: UserInfo,
    content: Content,
    *,
    is_new: bool = False,
    base_version: int | None = None,
    article=None,
    errors: list[str] | None = None,
    preview: bool = False,
    group=None,
    status_code: int = 200,
) -> HTMLResponse:  # noqa: ANN001
    return page(
        request,
        "edit.html",
        user,
        status_code=status_code,
        content=content,
        is_new=is_new,
        base_version=base_version,
        article=article,
        errors=errors or [],
        preview=preview,
        stages=STAGES,
        group=group,
    )


def _content_from(form, article_id: str) -> tuple[Content, list[str]]:  # noqa: ANN001 - a FormData
    errors = []
    first, last = int_or_none(form.get("days_first")), int_or_none(form.get("days_last"))
    if (first is None) != (last is None):
        errors.append("give both the first and the last treatment day, or neither")
    days = (first, last) if first is not None and last is not None else None
    content = Content(
        id=article_id,
        title=str(form.get("title", ""))[:200],
        topic=str(form.get("topic", "")).strip()[:64],
        stage=str(form.get("stage", ""))[:16],
        days=days,
        source_section=str(form.get("source_section", ""))[:200],
        body=str(form.get("body", ""))[:50_000],
    ).normalised()
    return content, errors + problems(content)


def _field_changes(old: Content | None, new: Content) -> list[tuple[str, str, str]]:
    names = ("title", "topic", "stage", "days", "source_section")
    rows = []
    for name in names:
        before = "" if old is None else _shown(getattr(old, name))
        after = _shown(getattr(new, name))
        rows.append((name.replace("_", " "), before, after))
    return rows


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return f"day {value[0]} to {value[1]}"
    return "any day" if value is None else str(value)


def _state_or_404(runtime: StaffRuntime, article_id: str):  # noqa: ANN202
    state = runtime.articles.state(article_id[:80])
    if state is None:
        raise NotFound()
    return state
