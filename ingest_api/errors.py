"""The API's errors: IngestErrors carrying their HTTP status, turned into a JSON body
`{"detail": message}` by the app's handler (FastAPI's own 422s have a list as detail)."""

from ingest_resources.errors import IngestError


class ApiError(IngestError):
    status = 500


class NotFound(ApiError):
    """An unknown dataset, version or route: 404."""

    status = 404


class BadParameter(ApiError):
    """A parameter that is well formed but wrong for this dataset (an unknown column, a cursor
    of another scan, a `from` after `to`): 422, in the shape of FastAPI's own validation errors
    (`{"detail": [{"loc": ["query", param], "msg": ..., "type": "value_error"}]}`)."""

    status = 422

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param or message.split("=", 1)[0].split(":", 1)[0].split(" ", 1)[0]


class Conflict(ApiError):
    """What a cursor was pinned to changed in a way the scan cannot go on from: 409."""

    status = 409


class Unavailable(ApiError):
    """The store or warehouse could not be read (a broken chain, a lost `current`, a database
    that refuses connections): 503."""

    status = 503
    retryable = True
