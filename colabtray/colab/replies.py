"""Reading the backend's JSON into models: a mismatch is one sentence that names the fields,
never their values (they may be secret)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from colabtray.colab import errors

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT] | TypeAdapter[Any], body: Any, what: str) -> Any:
    """Validate ``body``; a mismatch names the fields, never their values (they may be secret)."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        return model.model_validate(body)
    except ValidationError as exc:
        fields = sorted(
            {
                ".".join(str(p) for p in e["loc"]) or "the body"
                for e in exc.errors(include_input=False)
            }
        )
        detail = "missing or invalid: " + ", ".join(fields[:5])
        raise errors.MalformedResponseError(what, detail) from None


def try_parse(model: type[ModelT], body: Any) -> ModelT | None:
    try:
        return model.model_validate(body)
    except ValidationError:
        return None
