"""The embedded store: SQLAlchemy models, sessions and migrations."""

from lorebase.store.db import Store

__all__ = ["Store"]
