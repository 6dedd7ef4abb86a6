"""The base of every section of the settings tree: an unknown key is an error, not ignored."""

from __future__ import annotations

from pydantic import BaseModel


class Section(BaseModel):
    model_config = {"extra": "forbid"}
