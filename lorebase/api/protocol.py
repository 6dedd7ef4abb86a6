"""Request and response bodies. OpenAI's fields come first, in the order of its documentation;
lorebase's own extensions follow in a marked section of each model."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorebase.citations import Citation
from lorebase.generation.conversation import MODES
from lorebase.verdict import Verdict

# Database ids and numbers are 64-bit signed integers: a larger one would overflow SQLite's integer
# (an error in the driver) instead of simply finding nothing.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id (1 to 2^63-1).")]


class _Body(BaseModel):
    # Unknown OpenAI fields (logit_bias, audio, …) are accepted and ignored, as other servers do.
    model_config = ConfigDict(extra="ignore")


# --- chat completions -----------------------------------------------------------------------------


class ChatMessage(_Body):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str
    frequency_penalty: float | None = None
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1)
    presence_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = Field(None, ge=-MAX_ROW_ID - 1, le=MAX_ROW_ID)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    user: str | None = None

    # --- lorebase extensions ---
    mode: str = Field(
        "answer", description="; ".join(f"{m.name}: {m.about}" for m in MODES.values()) + ".",
        json_schema_extra={"enum": list(MODES)},
    )
    top_k: int | None = Field(None, ge=1, le=100, description="Sources to retrieve (answer mode).")
    filters: dict[str, Any] | None = Field(None, description="Retrieval filters: kind, repo, path_prefix, lecture, since, until.")
    source_ids: list[str] | None = Field(None, description="Summary mode: the sources to summarise.")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        if v not in MODES:
            raise ValueError(f"must be one of: {', '.join(MODES)}")
        return v

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if v[-1].role != "user":
            raise ValueError("the last message must be from the user")
        if not v[-1].text().strip():
            raise ValueError("the last user message is empty")
        return v

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


# lorebase's verdict on an answer (generated, extractive, abstained; per-sentence sources).
Grounding = Verdict


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    # --- lorebase extensions ---
    sources: list[Citation] = Field(default_factory=list)
    grounding: Grounding | None = None


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """A streamed piece. The first carries the role; the last carries finish_reason and, as
    lorebase's extension, the `sources` and `grounding` of the answer (after the check)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    # --- lorebase extensions ---
    sources: list[Citation] | None = None
    grounding: Grounding | None = None


# --- models and embeddings ------------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "lorebase"
    # --- lorebase extensions ---
    parent: str | None = None
    ready: bool | None = None  # false while the generator that will serve it is still starting


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingRequest(_Body):
    input: str | list[str] = Field(description="Text or texts to embed.")
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, v: str | list[str]) -> str | list[str]:
        texts = [v] if isinstance(v, str) else v
        if not texts or any(not t.strip() for t in texts):
            raise ValueError("input must be a non-empty string or a list of non-empty strings")
        if len(texts) > 2048:
            raise ValueError("at most 2048 inputs per request")
        return v


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 when asked for


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


# --- lorebase's own endpoints ---------------------------------------------------------------------


class SearchRequest(_Body):
    query: str
    top_k: int | None = Field(None, ge=1, le=100)
    filters: dict[str, Any] | None = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Citation]


class SummaryRequest(_Body):
    source_ids: list[str] | None = Field(None, description="Sources to summarise together.")
    lecture: str | None = Field(None, description="A lecture title or source id.")
    commit_range: str | None = Field(None, description="REPO:OLD..NEW, e.g. o/r:abc123..def456.")
    number: int | None = Field(None, ge=1, le=MAX_ROW_ID, description="An issue or PR number (with repo).")
    repo: str | None = None
    model: str | None = None


class SummaryResponse(BaseModel):
    object: Literal["summary"] = "summary"
    title: str
    summary: str
    sources: list[Citation]
    input_chars: int
    output_chars: int
    model: str


class FeedbackRequest(_Body):
    rating: Literal[1, -1, "up", "down"]
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    comment: str | None = None
    sources: list[dict[str, Any]] = Field(default_factory=list)
    model: str | None = None
    completion_id: str | None = None
    grounding: Verdict | None = Field(None, description="The `grounding` the completion came with, as it was shown.")

    @property
    def score(self) -> int:
        return 1 if self.rating in (1, "up") else -1


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
