"""Shared FastAPI dependencies."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

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


def checked_first(check: Callable[[Request], None]) -> type[APIRoute]:
    """A route class that runs `check` (who is calling) on the bare request before FastAPI reads, parses or
    validates anything: a caller without credentials gets its 401 even for a body that is not JSON."""

    class CheckedFirst(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()

            async def checked(request: Request) -> Response:
                await run_in_threadpool(check, request)  # a check may wait for the database
                return await handler(request)

            return checked

    return CheckedFirst
