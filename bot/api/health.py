"""`GET /api/health`: whether the assistant can answer, for load balancers and the clinic's IT person."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from sqlalchemy import text

from bot.api.deps import ClientDep, ServicesDep
from bot.outbox.worker import backlog
from bot.schemas import ERRORS, HealthResponse

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={429: ERRORS[429]})
async def health(services: ServicesDep, client: ClientDep) -> HealthResponse:
    """Rasa, the database, the knowledge index and the outbox backlog (counts only, no patient data)."""
    # A read: load balancers poll it, and it must not use up a patient's message allowance.
    if not services.limits.read(client).allowed:
        raise HTTPException(
            status_code=429, detail=services.replies.text("slow_down"), headers={"Retry-After": "30"}
        )
    manifest = services.answerer.retriever.store.manifest
    rasa_alive = await services.rasa.is_alive()

    def database() -> tuple[bool, object]:
        try:
            with services.db.session() as session:
                session.execute(text("SELECT 1"))
            return True, backlog(services.db)
        except Exception:  # noqa: BLE001 - health reports it
            return False, None

    database_ok, waiting = await asyncio.to_thread(database)
    return HealthResponse(
        status="ok" if rasa_alive and database_ok else "degraded",
        rasa=rasa_alive,
        database=database_ok,
        index_version=manifest.version,
        index_passages=manifest.count,
        embedding_model=manifest.model_name,
        learned_triage=services.triage.learned is not None,
        outbox_pending=getattr(waiting, "pending", None),
        outbox_oldest_pending_seconds=getattr(waiting, "oldest_pending_seconds", None),
        outbox_failed=getattr(waiting, "failed", None),
    )
