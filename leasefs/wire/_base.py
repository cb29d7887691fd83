"""What every wire model is: unknown fields refused, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

WIRE_CONFIG = ConfigDict(extra="forbid", frozen=True)


class WireModel(BaseModel):
    """The base of wire models without mutable defaults (lint cannot see through an alias
    that a subclass of this is a pydantic model; those with ``= []`` defaults subclass
    `pydantic.BaseModel` with `WIRE_CONFIG` themselves)."""

    model_config = WIRE_CONFIG
