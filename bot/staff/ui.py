"""The admin UI at /admin: server-rendered pages (Jinja2), a little plain JavaScript, no CDN.

Every page checks the session and the role first (bot/staff/auth.py); every form is read only through
`checked_form`, which verifies its CSRF token. The acting user is always the signed-in one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select

from bot.api.deps import client_address
from bot.conversation import store as conversation_store
from bot.escalation import handoff
from bot.models import Conversation, as_utc, utcnow
from bot.staff import audit
from bot.staff.accounts import AccountError, UserInfo
from bot.staff.api import content_version, gate_json
from bot.staff.articles import Content, StoreError, problems
from bot.staff.auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    PERMISSIONS,
    SESSION_COOKIE,
    RuntimeDep,
    checked_form,
    checked_header,
    csrf_token,
    login_token,
    may,
    new_login_cookie,
    runtime_of,
    ui_permission,
)
from bot.staff.catalogue import Filters, matching, topics
from bot.staff.models import ARTICLE_STATUSES, ROLES
from bot.staff.publishing import GateRefused, NotAllowed
from bot.staff.runtime import StaffRuntime
from bot.staff.tryit import try_question
from knowledge.articles import STAGES, ArticleError
from knowledge.diff import diff_text
from knowledge.exchange import export_archive, read_archive
from knowledge.importing import DocumentError, drafts, read_document

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
_markdown = MarkdownIt("commonmark", {"html": False})

router = APIRouter(prefix="/admin", tags=["staff UI"], include_in_schema=False)

Viewer = Annotated[UserInfo, Depends(ui_permission("view"))]
Editor = Annotated[UserInfo, Depends(ui_permission("edit"))]
Clinician = Annotated[UserInfo, Depends(ui_permission("publish"))]
QuestionsStaff = Annotated[UserInfo, Depends(ui_permission("questions"))]
CareStaff = Annotated[UserInfo, Depends(ui_permission("care"))]
Auditor = Annotated[UserInfo, Depends(ui_permission("audit"))]
Admin = Annotated[UserInfo, Depends(ui_permission("users"))]
Anyone = Annotated[UserInfo, Depends(ui_permission("account"))]


def markdown(text: str) -> Markup:
    """Markdown as safe HTML (raw HTML in the text is shown as text, not run)."""
    return Markup(_markdown.render(text or ""))  # noqa: S704 - markdown-it escapes with html disabled


TEMPLATES.env.filters["markdown"] = markdown
TEMPLATES.env.globals["may"] = may


def page(
    request: Request, template: str, user: UserInfo | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    runtime: StaffRuntime | None = getattr(request.app.state, "staff", None)
    session = request.cookies.get(SESSION_COOKIE) or ""
    context.update(
        request=request,
        user=user,
        csrf=csrf_token(runtime, session) if runtime and session else "",
        notice=request.query_params.get("notice", ""),
        clinic=runtime.services.clinic if runtime else None,
    )
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def error_page(request: Request, status_code: int, reason: str) -> HTMLResponse:
    user = getattr(request.state, "staff_user", None)
    return page(request, "error.html", user, status_code=status_code, reason=reason)


def back(path: str, notice: str = "", **params: Any) -> RedirectResponse:
    query = {key: value for key, value in {"notice": notice, **params}.items() if value not in ("", None)}
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


# --- signing in ----------------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, runtime: RuntimeDep, next: str = "/admin") -> HTMLResponse:  # noqa: A002
    cookie = request.cookies.get(LOGIN_COOKIE) or new_login_cookie()
    response = page(
        request, "login.html", None, next=_safe_next(next), login_csrf=login_token(runtime, cookie)
    )
    _set_cookie(response, runtime, LOGIN_COOKIE, cookie, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    client = client_address(request)
    if not runtime.login_limiter.allow(client):
        return _login_again(request, runtime, "rate", 429)
    form = await request.form(max_files=0, max_fields=10)
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    sent = form.get("csrf_token")
    if not cookie or not isinstance(sent, str) or not _same(sent, login_token(runtime, cookie)):
        return _login_again(request, runtime, "csrf", 403)
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:256]
    result = await asyncio.to_thread(runtime.accounts.authenticate, username, password)
    if result.outcome == "locked":
        return _login_again(request, runtime, "locked", 403)
    if result.outcome != "ok" or result.user is None:
        return _login_again(request, runtime, "wrong", 401)
    secret = await asyncio.to_thread(runtime.accounts.start_session, result.user)
    runtime.warm_gate_soon()
    response = back(_safe_next(str(form.get("next", "/admin"))))
    _set_cookie(
        response,
        runtime,
        SESSION_COOKIE,
        secret,
        max_age=runtime.services.settings.staff_session_hours * 3600,
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, user: Anyone) -> Response:
    await checked_form(request, runtime)
    runtime.accounts.end_session(request.cookies.get(SESSION_COOKIE), user.actor)
    response = back("/admin/login", "signed_out")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def _login_again(request: Request, runtime: StaffRuntime, reason: str, status_code: int) -> HTMLResponse:
    cookie = request.cookies.get(LOGIN_COOKIE) or new_login_cookie()
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        error=reason,
        next=_safe_next(request.query_params.get("next", "/admin")),
        login_csrf=login_token(runtime, cookie),
    )
    _set_cookie(response, runtime, LOGIN_COOKIE, cookie, max_age=3600)
    return response


def _set_cookie(response: Response, runtime: StaffRuntime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=runtime.cookie_secure,
    )


def _safe_next(target: str) -> str:
    """Only our own pages: never an open redirect to another site."""
    return (
        target
        if target.startswith("/admin") and not target.startswith("//") and "\\" not in target
        else "/admin"
    )


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


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
    group_id = _int(form.get("from_group"))
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
        runtime.articles.create(content, user.actor, note=_note(form))
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
    day, intent = _int(form.get("day")), (str(form.get("intent", "")).strip()[:64] or None)
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
    base = _int(form.get("base_version"))
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
        version = runtime.articles.save(content, user.actor, base, note=_note(form))
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
        runtime.articles.submit(article_id, _int(form.get("version")) or 0, user.actor)
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
    version = _int(form.get("version")) or 0
    try:
        review_by = date.fromisoformat(str(form.get("review_by", "")))
    except ValueError:
        return back(f"/admin/kb/{article_id}/review", "refused", detail="the review-by date is not a date")
    publisher = runtime.require_publisher()
    try:
        await asyncio.to_thread(publisher.publish, article_id, version, user.actor, review_by, _note(form))
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
        runtime.articles.send_back(article_id, _int(form.get("version")) or 0, user.actor, _note(form))
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
            _int(form.get("to_version")) or 0,
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
    first, last = _int(form.get("days_first")), _int(form.get("days_last"))
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
        raise _NotFound()
    return state


class _NotFound(Exception):
    pass


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _note(form) -> str | None:  # noqa: ANN001
    return str(form.get("note", "")).strip()[:300] or None


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


# --- escalations and handoffs --------------------------------------------------------------------------
SEVERITY_ORDER = {"emergency": 0, "urgent": 1}


@dataclass(frozen=True)
class EscalationRow:
    id: int
    severity: str
    concepts: list[str]
    patient_text: str
    reference: str | None
    conversation_id: str
    age: str
    acknowledged_by: str | None
    channel: str


@router.get("/care/escalations")
def escalations(request: Request, runtime: RuntimeDep, user: CareStaff, show: str = "open") -> HTMLResponse:
    services = runtime.services
    rows = services.escalations.recent(None if show == "all" else "open", 300)
    with services.db.session() as session:
        references = dict(
            session.execute(
                select(Conversation.id, Conversation.reference).where(
                    Conversation.id.in_({r.conversation_id for r in rows})
                )
            ).all()
        )
    now = utcnow()
    ordered = sorted(
        rows, key=lambda r: (r.acknowledged_at is not None, SEVERITY_ORDER.get(r.severity, 9), r.created_at)
    )
    shown = [
        EscalationRow(
            r.id,
            r.severity,
            r.concepts,
            r.patient_text,
            references.get(r.conversation_id),
            r.conversation_id,
            _age(now - as_utc(r.created_at)),
            r.acknowledged_by,
            r.channel,
        )
        for r in ordered
    ]
    return page(request, "escalations.html", user, escalations=shown, show=show)


@router.post("/care/escalations/{escalation_id}/acknowledge")
async def acknowledge(request: Request, escalation_id: int, runtime: RuntimeDep, user: CareStaff) -> Response:
    await checked_form(request, runtime)
    row = runtime.services.escalations.acknowledge(escalation_id, user.display_name)
    if row is None:
        return back("/admin/care/escalations", "refused", detail="no such escalation")
    audit.write(
        runtime.services.db,
        user.actor,
        "escalation_acknowledged",
        target_type="escalation",
        target_id=str(escalation_id),
    )
    return back("/admin/care/escalations", "acknowledged")


@router.get("/care/handoffs")
def handoffs(request: Request, runtime: RuntimeDep, user: CareStaff) -> HTMLResponse:
    now = utcnow()
    rows = [
        {
            "id": c.id,
            "reference": c.reference,
            "channel": c.channel,
            "reason": h.reason if h else "",
            "waiting": _age(now - as_utc(h.started_at)) if h else "",
        }
        for c, h in handoff.handed_off(runtime.services.db)
    ]
    return page(request, "handoffs.html", user, conversations=rows)


@router.get("/care/conversations/{conversation_id}")
def conversation(
    request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff
) -> HTMLResponse:
    services = runtime.services
    with services.db.session() as session:
        found = session.get(Conversation, conversation_id[:64])
        if found is None:
            raise _NotFound()
        session.expunge(found)
    messages = conversation_store.messages(services.db, found.id)
    return page(request, "conversation.html", user, conversation=found, messages=messages)


@router.post("/care/conversations/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff) -> Response:
    form = await checked_form(request, runtime)
    text = str(form.get("text", "")).strip()
    target = f"/admin/care/conversations/{quote(conversation_id)}"
    if not text or len(text) > 2000:
        return back(target, "refused", detail="a reply has 1 to 2000 characters")
    posted = handoff.post_staff_reply(runtime.services.db, conversation_id[:64], text, user.display_name)
    if posted is None:
        raise _NotFound()
    audit.write(
        runtime.services.db,
        user.actor,
        "staff_replied",
        target_type="conversation",
        target_id=conversation_id[:64],
    )
    return back(target, "replied")


@router.post("/care/conversations/{conversation_id}/hand-back")
async def hand_back(request: Request, conversation_id: str, runtime: RuntimeDep, user: CareStaff) -> Response:
    await checked_form(request, runtime)
    changed = handoff.hand_back(runtime.services.db, conversation_id[:64], user.display_name)
    if changed is None:
        raise _NotFound()
    if changed:
        audit.write(
            runtime.services.db,
            user.actor,
            "handed_back",
            target_type="conversation",
            target_id=conversation_id[:64],
        )
    return back("/admin/care/handoffs", "handed_back")


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


# --- audit log -----------------------------------------------------------------------------------------
@router.get("/audit")
def audit_log(
    request: Request, runtime: RuntimeDep, user: Auditor, action: str = "", actor: str = "", target: str = ""
) -> HTMLResponse:
    lines = audit.entries(
        runtime.services.db,
        action=action[:32] or None,
        actor=actor[:80] or None,
        target_id=target[:80] or None,
        limit=300,
    )
    return page(
        request, "audit.html", user, lines=lines, filters={"action": action, "actor": actor, "target": target}
    )


# --- users and one's own account -----------------------------------------------------------------------
@router.get("/users")
def users(request: Request, runtime: RuntimeDep, user: Admin) -> HTMLResponse:
    return page(
        request, "users.html", user, users=runtime.accounts.users(), roles=ROLES, permissions=PERMISSIONS
    )


@router.post("/users")
async def create_user(request: Request, runtime: RuntimeDep, user: Admin) -> Response:
    form = await checked_form(request, runtime)
    try:
        runtime.accounts.create_user(
            str(form.get("username", "")),
            str(form.get("display_name", "")),
            str(form.get("role", "")),
            str(form.get("password", "")),
            user.actor,
        )
    except AccountError as error:
        return back("/admin/users", "refused", detail=str(error))
    return back("/admin/users", "user_created")


@router.post("/users/{user_id}")
async def change_user(request: Request, user_id: int, runtime: RuntimeDep, user: Admin) -> Response:
    form = await checked_form(request, runtime)
    change = str(form.get("change", ""))
    try:
        if change == "role":
            runtime.accounts.update_user(user_id, user.actor, role=str(form.get("role", "")))
        elif change in ("activate", "deactivate"):
            runtime.accounts.update_user(user_id, user.actor, active=change == "activate")
        elif change == "unlock":
            runtime.accounts.unlock(user_id, user.actor)
        elif change == "password":
            runtime.accounts.set_password(user_id, str(form.get("password", "")), user.actor)
        else:
            return back("/admin/users", "refused", detail="unknown change")
    except AccountError as error:
        return back("/admin/users", "refused", detail=str(error))
    return back("/admin/users", "user_changed")


@router.get("/account")
def account(request: Request, runtime: RuntimeDep, user: Anyone) -> HTMLResponse:
    return page(request, "account.html", user, tokens=runtime.accounts.tokens(user.id), new_token=None)


@router.post("/account/password")
async def change_password(request: Request, runtime: RuntimeDep, user: Anyone) -> Response:
    form = await checked_form(request, runtime)
    try:
        runtime.accounts.set_password(
            user.id, str(form.get("password", "")), user.actor, current=str(form.get("current", ""))
        )
    except AccountError as error:
        return back("/admin/account", "refused", detail=str(error))
    response = back("/admin/login", "password_changed")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/account/tokens")
async def create_token(request: Request, runtime: RuntimeDep, user: Anyone) -> HTMLResponse:
    form = await checked_form(request, runtime)
    token = runtime.accounts.create_token(user.id, str(form.get("name", "")), user.actor)
    return page(request, "account.html", user, tokens=runtime.accounts.tokens(user.id), new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, runtime: RuntimeDep, user: Anyone) -> Response:
    await checked_form(request, runtime)
    owner = None if may(user, "users") else user.id
    if not runtime.accounts.revoke_token(token_id, user.actor, owner_id=owner):
        return back("/admin/account", "refused", detail="no such token")
    return back("/admin/account", "token_revoked")


def not_found_page(request: Request, error: Exception) -> HTMLResponse:
    return error_page(request, 404, "not_found")


__all__ = ["router", "error_page", "not_found_page", "runtime_of", "_NotFound"]
