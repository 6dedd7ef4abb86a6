"""SQLAlchemy's declarative base, shared by lorebase's tables (store.models) and the chat UI's
(store.chainlit_tables). Both model modules import it; neither imports the other. Whatever needs
the whole schema (the migrations' env, the schema tests) imports both modules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}
