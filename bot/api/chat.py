"""The public chat API used by the web widget and integrators."""

from fastapi import APIRouter, HTTPException

from bot.api.deps import PipelineDep, ServicesDep
from bot.pipeline import BadMessage, IncomingMessage
from bot.schemas import ChatRequest, ChatResponse, HealthResponse

router = APIRouter(prefix="/api", tags=["chat"])


@router.post("/chat", response_model=ChatResponse)
async def chat(request: ChatRequest, pipeline: PipelineDep) -> ChatResponse:
    """Send one patient message; a null `session_id` starts a new conversation."""
    incoming = IncomingMessage(
        text=request.text, session_id=request.session_id, treatment_date=request.treatment_date, channel="api"
    )
    try:
        return await pipeline.handle(incoming)
    except BadMessage as error:
        raise HTTPException(status_code=422, detail=str(error)) from error


@router.get("/health", response_model=HealthResponse)
async def health(services: ServicesDep) -> HealthResponse:
    """Whether Rasa answers, which knowledge index is live and which embedding model it uses."""
    manifest = services.answerer.retriever.store.manifest
    rasa_alive = await services.rasa.is_alive()
    return HealthResponse(
        status="ok" if rasa_alive else "degraded",
        rasa=rasa_alive,
        index_version=manifest.version,
        index_passages=manifest.count,
        embedding_model=manifest.model_name,
    )
