"""What the routers share: the documented error responses, the dataset path parameter."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ingest_api.auth import api_state, require_key
from ingest_api.models import ErrorBody
from ingest_api.state import ApiState

DatasetId = Annotated[
    str, Path(min_length=1, max_length=200, description="a dataset_id (GET /datasets)")
]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the JSON errors a route may answer with (422s are FastAPI's own)."""
    meaning = {
        401: "an API key is needed (INGEST_API_KEY is set)",
        404: "unknown dataset or version, or nothing published yet",
        409: "the cursor's scan cannot go on (see detail)",
        429: "too many requests from this address (Retry-After says when to retry)",
        503: "the store or warehouse cannot be read (see detail)",
    }
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}


State = Annotated[ApiState, Depends(api_state)]  # the app's state, as a route parameter


def guarded_router() -> APIRouter:
    """A router whose every route needs the API key (when one is set)."""
    return APIRouter(dependencies=[Depends(require_key)], responses=errors(401, 429, 503))
