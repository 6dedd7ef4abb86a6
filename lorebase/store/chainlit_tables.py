"""The tables Chainlit's SQLAlchemyDataLayer reads and writes (chat UI users, threads, steps,
elements, feedbacks), kept in our database and created by our migrations.

Chainlit writes them with hand-written SQL, so names and columns follow chainlit 2.12's
``chainlit/data/sql_alchemy.py`` exactly (camelCase, quoted). Ids are UUID strings and timestamps
ISO strings, as Chainlit sends them; JSON values arrive already serialised, so they are Text here
(a JSON column on SQLite would have numeric affinity). Chainlit deletes children itself; the
foreign keys make a deleted user's threads go with it where the database enforces them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from lorebase.store.base import Base

CHAINLIT_TABLES = ("users", "threads", "steps", "elements", "feedbacks")


class ChainlitUser(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    identifier: Mapped[str] = mapped_column(Text, unique=True)
    meta: Mapped[str] = mapped_column("metadata", Text)
    createdAt: Mapped[str | None] = mapped_column(Text)


class ChainlitThread(Base):
    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    createdAt: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    userId: Mapped[str | None] = mapped_column(Text, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    userIdentifier: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[str | None] = mapped_column("metadata", Text)


class ChainlitStep(Base):
    __tablename__ = "steps"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    threadId: Mapped[str] = mapped_column(Text, ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    parentId: Mapped[str | None] = mapped_column(Text)
    streaming: Mapped[bool] = mapped_column(Boolean)
    waitForAnswer: Mapped[bool | None] = mapped_column(Boolean)
    isError: Mapped[bool | None] = mapped_column(Boolean)
    meta: Mapped[str | None] = mapped_column("metadata", Text)
    tags: Mapped[str | None] = mapped_column(Text)
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    createdAt: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(Text)
    modes: Mapped[str | None] = mapped_column(Text)
    start: Mapped[str | None] = mapped_column(Text)
    end: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[str | None] = mapped_column(Text)
    showInput: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    indent: Mapped[int | None] = mapped_column(Integer)
    defaultOpen: Mapped[bool | None] = mapped_column(Boolean)
    autoCollapse: Mapped[bool | None] = mapped_column(Boolean)
    icon: Mapped[str | None] = mapped_column(Text)


class ChainlitElement(Base):
    __tablename__ = "elements"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    threadId: Mapped[str | None] = mapped_column(Text, ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    type: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    chainlitKey: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    display: Mapped[str | None] = mapped_column(Text)
    objectKey: Mapped[str | None] = mapped_column(Text)
    size: Mapped[str | None] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(Text)
    forId: Mapped[str | None] = mapped_column(Text)
    mime: Mapped[str | None] = mapped_column(Text)
    props: Mapped[str | None] = mapped_column(Text)
    autoPlay: Mapped[bool | None] = mapped_column(Boolean)
    playerConfig: Mapped[str | None] = mapped_column(Text)


class ChainlitFeedback(Base):
    __tablename__ = "feedbacks"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    forId: Mapped[str] = mapped_column(Text, index=True)
    threadId: Mapped[str | None] = mapped_column(Text, ForeignKey("threads.id", ondelete="CASCADE"))
    value: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
