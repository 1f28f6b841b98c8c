"""A base for models whose optional extension fields are left out of the JSON when unset."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

__all__ = ["OmitNone"]


class OmitNone(BaseModel):
    """Drops the fields named in ``_omit_if_none`` from the output when they are None."""

    # ClassVar, not a pydantic private attribute: private attributes are copied into every instance.
    _omit_if_none: ClassVar[frozenset[str]] = frozenset()

    # No return annotation on purpose: pydantic then describes the output (the JSON Schema in serialization
    # mode, hence schemas.json and openapi.json) by the model's fields. Annotated ``-> Any`` it published
    # ``{}``: any value at all.
    @model_serializer(mode="wrap")
    def _drop_unset_extensions(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        out = handler(self)
        if isinstance(out, dict):
            for name in self._omit_if_none:
                if out.get(name, 0) is None:
                    del out[name]
        return out
