"""Rasa's action endpoint: the Rasa server calls it to run the custom actions in actions/.

The actions run in this process (rasa-sdk's ActionExecutor), next to the knowledge base they use. The
shared secret comes in the Authorization header and is checked before the body is read.
"""

import hmac
import json
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import (
    ActionExecutionRejection,
    ActionMissingDomainException,
    ActionNotFoundException,
)

from bot.api.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["rasa"], include_in_schema=False)

_executor = ActionExecutor()
_executor.register_package("actions")


def _authorised(request: Request, expected: str) -> bool:
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes, so any header a client sends (non-ASCII included) compares without raising.
    return hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode())


@router.post("/webhook")
async def run_action(request: Request, services: ServicesDep) -> JSONResponse:
    """Run one custom action for Rasa; only Rasa knows the shared token."""
    if not _authorised(request, services.settings.action_token):
        raise HTTPException(
            status_code=401, detail="a valid action token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        action_call = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(status_code=400, detail="the body is not JSON") from error
    if not isinstance(action_call, dict):
        raise HTTPException(status_code=400, detail="the body is not a JSON object")
    try:
        result = await _executor.run(action_call)
    except ActionExecutionRejection as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=400)
    except ActionNotFoundException as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=404)
    except ActionMissingDomainException as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=449)
    return JSONResponse(result.model_dump() if result else None)
