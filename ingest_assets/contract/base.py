"""What every contract model shares: unknown keys refused, values frozen, and cross-field errors
reported at a field path."""

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def field_error(path: str, message: str) -> PydanticCustomError:
    """An error of a cross-field rule, reported at `path` (relative to the model it is raised in)."""
    return PydanticCustomError("contract", message, {"field": path})
