"""Shared FastAPI dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from bot.conversation.pipeline import ChatPipeline
from bot.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_pipeline(request: Request) -> ChatPipeline:
    return request.app.state.pipeline


def client_address(request: Request) -> str:
    """Who is calling, for rate limits and escalation caps (behind a proxy, uvicorn's --proxy-headers
    puts the real address here)."""
    return request.client.host if request.client else "unknown"


ServicesDep = Annotated[Services, Depends(get_services)]
PipelineDep = Annotated[ChatPipeline, Depends(get_pipeline)]
ClientDep = Annotated[str, Depends(client_address)]
