"""Shared FastAPI dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from bot.pipeline import ChatPipeline
from bot.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_pipeline(request: Request) -> ChatPipeline:
    return request.app.state.pipeline


ServicesDep = Annotated[Services, Depends(get_services)]
PipelineDep = Annotated[ChatPipeline, Depends(get_pipeline)]
