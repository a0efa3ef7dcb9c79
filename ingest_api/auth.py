"""The API key: with INGEST_API_KEY set, every route but /health (and the docs) needs
`Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in constant time
(`hmac.compare_digest`); anything else is a 401 that names the headers, never the key."""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ingest_api.state import ApiState

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <INGEST_API_KEY>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="INGEST_API_KEY")


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _same(given: str | None, key: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), key.encode())


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> None:
    key = api_state(request).settings.api_key
    if key is None:
        return
    token = credentials.credentials if credentials is not None else None
    # both compared whatever the first gives: the time taken does not tell which was sent
    by_bearer, by_header = _same(token, key), _same(header_key, key)
    if by_bearer or by_header:
        return
    raise HTTPException(
        status_code=401,
        detail="this server needs an API key: send `Authorization: Bearer <key>` or "
        "`X-API-Key: <key>`",
        headers={"WWW-Authenticate": "Bearer"},
    )
