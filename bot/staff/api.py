"""The staff JSON API for the knowledge base (personal bearer tokens, roles as in bot/staff/auth.py).

GET  /admin/articles                     list (q, topic, stage, status, review=due|ok)
POST /admin/articles                     a new article (a draft)                       editor, clinician
GET  /admin/articles/{id}                the article: newest version, published version, sign-off
PUT  /admin/articles/{id}                save a new draft version                      editor, clinician
POST /admin/articles/{id}/submit         put the newest version up for review          editor, clinician
GET  /admin/articles/{id}/review         the safety gate's report for publishing it
POST /admin/articles/{id}/publish        sign off and publish exactly that version     clinician
POST /admin/articles/{id}/send-back      back to draft, with a note                    clinician
POST /admin/articles/{id}/rollback       copy an old version (publish=true: live now)  editor / clinician
POST /admin/articles/{id}/retire         stop telling patients this article            clinician
GET  /admin/articles/{id}/versions       every version (newest first)
GET  /admin/articles-export              all articles as a zip of Markdown files
POST /admin/articles-import              a zip or a .md file (body) -> drafts           editor, clinician
GET  /admin/knowledge                    what this instance serves (version, content hash, release)
POST /admin/knowledge/try                a question against live content or drafts
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, Field

from bot.schemas import not_a_boolean
from bot.staff.accounts import UserInfo
from bot.staff.articles import ArticleState, ConflictError, Content, StoreError
from bot.staff.auth import RuntimeDep, api_permission, api_router
from bot.staff.catalogue import Filters, matching
from bot.staff.publishing import GateRefused, NotAllowed
from bot.staff.runtime import StaffRuntime
from bot.staff.tryit import try_question
from knowledge.articles import ArticleError
from knowledge.exchange import export_archive, read_archive
from knowledge.gate import GateReport

router = api_router(tags=["staff: knowledge base"])

Viewer = Annotated[UserInfo, Depends(api_permission("view"))]
Editor = Annotated[UserInfo, Depends(api_permission("edit"))]
Clinician = Annotated[UserInfo, Depends(api_permission("publish"))]
ArticleId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9-]+$")]


class ContentIn(BaseModel):
    title: str = Field(max_length=200)
    topic: str = Field(max_length=64)
    stage: str = Field(max_length=16)
    days: list[int] | None = Field(default=None, description="[first, last] treatment day, or null: any day")
    source_section: str = Field(max_length=200)
    body: str = Field(max_length=50_000)
    note: str | None = Field(default=None, max_length=300, description="what changed, for the history")

    def content(self, article_id: str) -> Content:
        days = tuple(self.days) if self.days else None
        if days is not None and len(days) != 2:
            raise HTTPException(status_code=422, detail="days must be [first, last]")
        return Content(article_id, self.title, self.topic, self.stage, days, self.source_section, self.body)  # type: ignore[arg-type]


class NewArticle(ContentIn):
    id: str = Field(max_length=60, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class SavedDraft(ContentIn):
    base_version: int | None = Field(default=None, description="the version you edited (refused if it moved)")


class VersionRef(BaseModel):
    version: int


class PublishIn(BaseModel):
    version: int = Field(description="the exact version you reviewed")
    review_by: date | None = Field(default=None, description="re-review after this date (default: 12 months)")
    note: str | None = Field(default=None, max_length=300)


class SendBack(BaseModel):
    version: int
    note: str = Field(min_length=1, max_length=300)


class RollbackIn(BaseModel):
    to_version: int
    publish: bool = False
    review_by: date | None = None


class TryIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    day: Annotated[int, Field(ge=0, le=3650), BeforeValidator(not_a_boolean)] | None = None
    intent: str | None = Field(default=None, max_length=64)
    content: str = Field(
        default="live",
        max_length=90,
        pattern=r"^(live|drafts|article:[a-z0-9-]+)$",
        description="live, drafts (every newest version) or article:<id>",
    )


class ContentOut(BaseModel):
    version: int
    title: str
    topic: str
    stage: str
    days: list[int] | None
    source_section: str
    body: str


class ArticleOut(BaseModel):
    id: str
    status: str
    head_version: int
    published_version: int | None
    signed_off_by: str | None
    review_by: date | None
    review_due: bool
    head: ContentOut
    published: ContentOut | None


class VersionOut(ContentOut):
    origin: str
    note: str | None
    created_by: str
    created_at: datetime
    signed_off_by: str | None


def _content_out(version: int, content: Content) -> ContentOut:
    return ContentOut(
        version=version,
        title=content.title,
        topic=content.topic,
        stage=content.stage,
        days=list(content.days) if content.days else None,
        source_section=content.source_section,
        body=content.body,
    )


def _article_out(state: ArticleState) -> ArticleOut:
    return ArticleOut(
        id=state.id,
        status=state.status,
        head_version=state.head.version,
        published_version=state.published.version if state.published else None,
        signed_off_by=state.signoff.clinician if state.signoff else None,
        review_by=state.signoff.review_by if state.signoff else None,
        review_due=state.review_due(date.today()),
        head=_content_out(state.head.version, state.head.content),
        published=_content_out(state.published.version, state.published.content) if state.published else None,
    )


def gate_json(report: GateReport) -> dict:
    """The safety gate's report, as the API and the review page show it."""
    return {
        **report.summary(),
        "seconds": round(report.seconds, 3),
        "changes": [
            {
                "id": c.probe.id,
                "question": c.probe.text,
                "red_flag_question": c.probe.red_flag_question,
                "before": c.before.label(),
                "after": c.after.label(),
                "verdict": c.verdict,
            }
            for c in report.changes
        ],
        "red_flag_articles": [
            {
                "id": r.article_id,
                "questions": r.questions,
                "before": r.before,
                "after": r.after,
                "published_after": r.published_after,
                "broken": r.broken,
            }
            for r in report.reach
        ],
        "emergency_conflicts": [
            {
                "article": c.article_id,
                "passage": c.position + 1,
                "signs": list(c.signs),
                "already_live": c.already_live,
            }
            for c in report.conflicts
        ],
    }


def _publisher(runtime: StaffRuntime):  # noqa: ANN202
    if runtime.publisher is None:
        raise HTTPException(status_code=503, detail="this app instance runs without a knowledge index")
    return runtime.publisher


def _state(runtime: StaffRuntime, article_id: str) -> ArticleState:
    state = runtime.articles.state(article_id)
    if state is None:
        raise HTTPException(status_code=404, detail=f"there is no article '{article_id}'")
    return state


def _refusal(error: StoreError) -> HTTPException:
    if isinstance(error, NotAllowed):
        return HTTPException(status_code=403, detail=str(error))
    if isinstance(error, ConflictError):
        return HTTPException(status_code=409, detail=str(error))
    return HTTPException(status_code=422, detail=str(error))


@router.get("/articles", response_model=list[ArticleOut])
def list_articles(
    runtime: RuntimeDep,
    user: Viewer,
    q: Annotated[str, Query(max_length=100)] = "",
    topic: Annotated[str, Query(max_length=64)] = "",
    stage: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    review: Annotated[str, Query(max_length=8)] = "",
) -> list[ArticleOut]:
    found = matching(runtime.articles.states(), Filters(q, topic, stage, status, review), date.today())
    return [_article_out(state) for state in found]


@router.post("/articles", response_model=ArticleOut, status_code=201)
def create_article(body: NewArticle, runtime: RuntimeDep, user: Editor) -> ArticleOut:
    try:
        runtime.articles.create(body.content(body.id), user.actor, note=body.note)
    except StoreError as error:
        raise _refusal(error) from error
    return _article_out(_state(runtime, body.id))


@router.get("/articles/{article_id}", response_model=ArticleOut)
def get_article(article_id: ArticleId, runtime: RuntimeDep, user: Viewer) -> ArticleOut:
    return _article_out(_state(runtime, article_id))


@router.put("/articles/{article_id}", response_model=ArticleOut)
def save_article(article_id: ArticleId, body: SavedDraft, runtime: RuntimeDep, user: Editor) -> ArticleOut:
    _state(runtime, article_id)
    try:
        runtime.articles.save(body.content(article_id), user.actor, body.base_version, note=body.note)
    except StoreError as error:
        raise _refusal(error) from error
    return _article_out(_state(runtime, article_id))


@router.post("/articles/{article_id}/submit", response_model=ArticleOut)
def submit_article(article_id: ArticleId, body: VersionRef, runtime: RuntimeDep, user: Editor) -> ArticleOut:
    _state(runtime, article_id)
    try:
        runtime.articles.submit(article_id, body.version, user.actor)
    except StoreError as error:
        raise _refusal(error) from error
    return _article_out(_state(runtime, article_id))


@router.get("/articles/{article_id}/review")
async def review_article(
    article_id: ArticleId, runtime: RuntimeDep, user: Viewer, version: Annotated[int | None, Query()] = None
) -> dict:
    """What publishing this version would change, and whether the safety gate lets it through."""
    _state(runtime, article_id)
    publisher = _publisher(runtime)
    try:
        report = await asyncio.to_thread(publisher.review, article_id, user.actor, version)
    except StoreError as error:
        raise _refusal(error) from error
    return gate_json(report)


@router.post("/articles/{article_id}/publish")
async def publish_article(
    article_id: ArticleId, body: PublishIn, runtime: RuntimeDep, user: Clinician
) -> JSONResponse:
    _state(runtime, article_id)
    publisher = _publisher(runtime)
    review_by = body.review_by or runtime.articles.new_review_by(date.today())
    try:
        report = await asyncio.to_thread(
            publisher.publish, article_id, body.version, user.actor, review_by, body.note
        )
    except GateRefused as refused:
        return JSONResponse({"detail": str(refused), "gate": gate_json(refused.report)}, status_code=409)
    except StoreError as error:
        raise _refusal(error) from error
    state = _state(runtime, article_id)
    return JSONResponse({"article": _article_out(state).model_dump(mode="json"), "gate": gate_json(report)})


@router.post("/articles/{article_id}/send-back", response_model=ArticleOut)
def send_back(article_id: ArticleId, body: SendBack, runtime: RuntimeDep, user: Clinician) -> ArticleOut:
    _state(runtime, article_id)
    try:
        runtime.articles.send_back(article_id, body.version, user.actor, body.note)
    except StoreError as error:
        raise _refusal(error) from error
    return _article_out(_state(runtime, article_id))


@router.post("/articles/{article_id}/rollback")
async def rollback(
    article_id: ArticleId, body: RollbackIn, runtime: RuntimeDep, user: Editor
) -> JSONResponse:
    _state(runtime, article_id)
    publisher = _publisher(runtime)
    try:
        version, report = await asyncio.to_thread(
            publisher.rollback, article_id, body.to_version, user.actor, body.publish, body.review_by
        )
    except GateRefused as refused:
        return JSONResponse({"detail": str(refused), "gate": gate_json(refused.report)}, status_code=409)
    except StoreError as error:
        raise _refusal(error) from error
    payload = {
        "version": version,
        "article": _article_out(_state(runtime, article_id)).model_dump(mode="json"),
    }
    if report is not None:
        payload["gate"] = gate_json(report)
    return JSONResponse(payload)


@router.post("/articles/{article_id}/retire")
async def retire(article_id: ArticleId, runtime: RuntimeDep, user: Clinician) -> JSONResponse:
    _state(runtime, article_id)
    publisher = _publisher(runtime)
    try:
        report = await asyncio.to_thread(publisher.retire, article_id, user.actor)
    except GateRefused as refused:
        return JSONResponse({"detail": str(refused), "gate": gate_json(refused.report)}, status_code=409)
    except StoreError as error:
        raise _refusal(error) from error
    return JSONResponse(
        {
            "article": _article_out(_state(runtime, article_id)).model_dump(mode="json"),
            "gate": gate_json(report),
        }
    )


@router.get("/articles/{article_id}/versions", response_model=list[VersionOut])
def versions(article_id: ArticleId, runtime: RuntimeDep, user: Viewer) -> list[VersionOut]:
    _state(runtime, article_id)
    signed = runtime.articles.signoffs(article_id)
    return [
        VersionOut(
            **_content_out(v.version, v.content).model_dump(),
            origin=v.origin,
            note=v.note,
            created_by=v.created_by,
            created_at=v.created_at,
            signed_off_by=signed[v.version].clinician if v.version in signed else None,
        )
        for v in runtime.articles.versions(article_id)
    ]


@router.get(
    "/articles-export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "a zip of Markdown files"}},
)
def export_articles(runtime: RuntimeDep, user: Viewer) -> Response:
    data = export_archive(runtime.articles.export())
    headers = {"Content-Disposition": 'attachment; filename="articles.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


@router.post("/articles-import")
async def import_articles(
    request: Request,
    runtime: RuntimeDep,
    user: Editor,
    filename: Annotated[str, Query(max_length=200)] = "articles.zip",
) -> dict:
    """The request body is the zip (or one .md file); every article becomes a draft where it changed."""
    data = await request.body()
    try:
        articles = read_archive(filename, data)
        result = await asyncio.to_thread(runtime.articles.import_articles, articles, user.actor)
    except (ArticleError, StoreError) as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}


@router.get("/knowledge")
def knowledge_state(runtime: RuntimeDep, user: Viewer) -> dict:
    """The knowledge version this app instance answers from, and the newest published release."""
    live = runtime.live
    if live is None or not live.loaded:
        raise HTTPException(status_code=503, detail="this app instance runs without a knowledge index")
    release = runtime.articles.latest_release()
    current = live.current
    return {
        "index_version": current.version,
        "content_hash": current.content_hash,
        "passages": len(current.store),
        "latest_release": release[0] if release else None,
        "release_content_hash": release[1] if release else None,
        "in_step": bool(release) and release[1] == current.content_hash,
        "last_swap_seconds": live.last_swap_seconds,
    }


@router.post("/knowledge/try")
async def knowledge_try(body: TryIn, runtime: RuntimeDep, user: Viewer) -> dict:
    version = await asyncio.to_thread(content_version, runtime, body.content)
    result = await asyncio.to_thread(
        try_question, runtime.services, version, body.question, body.day, body.intent
    )
    return {
        "knowledge_version": result.knowledge_version,
        "triage": result.triage,
        "threshold": result.threshold,
        "hits": [hit.__dict__ for hit in result.hits],
        "reply": [message.__dict__ for message in result.reply],
    }


def content_version(runtime: StaffRuntime, content: str):  # noqa: ANN201 - a KnowledgeVersion
    """live: what patients get now; drafts: every article at its newest version; article:<id>: the live
    content with that article's newest version."""
    live = runtime.live
    if live is None or not live.loaded:
        raise HTTPException(status_code=503, detail="this app instance runs without a knowledge index")
    if content == "live":
        return live.current
    if content == "drafts":
        return live.candidate(runtime.articles.working_articles())
    if content.startswith("article:"):
        article_id = content.removeprefix("article:")
        state = _state(runtime, article_id)
        published = [a for a in runtime.articles.published_articles() if a.id != article_id]
        draft = state.head.content.article(state.head.version, "approved", "unreviewed")
        return live.candidate(sorted([*published, draft], key=lambda a: a.id))
    raise HTTPException(status_code=422, detail="content is live, drafts or article:<id>")
