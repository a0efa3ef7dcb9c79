"""The FastAPI application: routes, the API key, the rate limit, JSON errors throughout."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest_api.cache import ByteLru
from ingest_api.catalog import Catalog
from ingest_api.errors import ApiError, BadParameter
from ingest_api.ratelimit import RateLimit
from ingest_api.routers import data, datasets, ops
from ingest_api.settings import ApiSettings
from ingest_api.snapshot import Month
from ingest_api.state import ApiState
from ingest_api.verifier import Verifier
from ingest_assets import settings as ingest_settings
from ingest_assets.contract import DatasetConfig, load_config_dir
from ingest_resources.errors import IngestError
from ingest_resources.runtime import Runtime, runtime_from_env

LOG = logging.getLogger("ingest_api")

DESCRIPTION = """The published data of Ingest's datasets, their versions and the platform's
health. Rows are the latest value per key (as `ingest export` gives them), paginated by an
opaque cursor pinned to the version the scan started on. With INGEST_API_KEY set, every route
but /health needs `Authorization: Bearer <key>` or `X-API-Key: <key>`."""


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if isinstance(exc, BadParameter):  # the shape of FastAPI's own 422s
        loc = ["query", exc.param] if exc.param else ["query"]
        return _error(422, [{"loc": loc, "msg": str(exc), "type": "value_error"}])
    return _error(exc.status, str(exc))


async def _ingest_error(request: Request, exc: Exception) -> JSONResponse:
    """An error of the store or warehouse met while answering: the service is unavailable for
    this dataset, and the message says why."""
    LOG.warning("%s %s: %s", request.method, request.url.path, exc)
    return _error(503, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, exc.detail, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in error.items() if k in ("loc", "msg", "type")} for error in exc.errors()
    ]
    return _error(422, errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    LOG.exception("%s %s failed", request.method, request.url.path)
    return _error(500, f"internal error ({type(exc).__name__}); the server's log has the details")


def create_app(
    api_settings: ApiSettings | None = None,
    runtime: Runtime | None = None,
    configs: list[DatasetConfig] | None = None,
) -> FastAPI:
    """The app over `runtime` (default: the environment's store and warehouse) and `configs`
    (default: every valid dataset of INGEST_CONFIG_DIR, loaded now)."""
    api_settings = api_settings or ApiSettings.from_env()
    runtime = runtime or runtime_from_env()
    if configs is None:
        loaded = load_config_dir(ingest_settings.config_dir())
        for problem in loaded.problems:
            LOG.warning("dataset config not loaded: %s", problem)
        configs = loaded.configs
    catalog = Catalog(runtime.store, configs)
    app = FastAPI(title="Ingest read API", version="1", description=DESCRIPTION)
    app.state.api = ApiState(
        settings=api_settings,
        runtime=runtime,
        catalog=catalog,
        months=ByteLru[Month](api_settings.cache_bytes),
        verifier=Verifier(catalog, api_settings.verify),
    )
    app.include_router(datasets.router)
    app.include_router(data.router)
    app.include_router(ops.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(IngestError, _ingest_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RateLimit, rate=api_settings.rate, burst=api_settings.burst)
    return app
