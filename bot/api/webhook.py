"""Rasa's action endpoint: the Rasa server calls it to run the custom actions in actions/.

The actions run in this process (rasa-sdk's ActionExecutor), next to the knowledge base they use.
"""

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Query
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


@router.post("/webhook")
async def run_action(
    services: ServicesDep, action_call: dict[str, Any] = Body(...), token: str = Query("")
) -> JSONResponse:
    """Run one custom action for Rasa; only Rasa knows the shared token."""
    if not hmac.compare_digest(token, services.settings.action_token):
        raise HTTPException(status_code=403, detail="bad action token")
    try:
        result = await _executor.run(action_call)
    except ActionExecutionRejection as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=400)
    except ActionNotFoundException as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=404)
    except ActionMissingDomainException as error:
        return JSONResponse({"error": error.message, "action_name": error.action_name}, status_code=449)
    return JSONResponse(result.model_dump() if result else None)
