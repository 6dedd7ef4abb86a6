"""What every generator backend offers: the request and delta types, the protocol, and prompt counting.

Backends stream :class:`Delta` objects; the last one carries ``finish_reason`` and :class:`Usage`.
Errors are lorebase's: ``UnknownModel`` (no such base model or adapter), ``PromptTooLong``,
``EngineUnavailable``, ``Overloaded``. A stream raises them on its first step, before any text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lorebase.errors import ModelNotAvailable, PromptTooLong

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Message = dict[str, str]


@dataclass
class GenerationRequest:
    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    model: str | None = None  # None: the base model; otherwise an adapter's name
    json_schema: dict[str, Any] | None = None  # constrain the answer to JSON of this schema
    # Above 1.0 discourages repeating earlier tokens; small models loop without it. Not an OpenAI
    # parameter: sent to vLLM as an extra field, and only when set.
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Delta:
    text: str
    finish_reason: str | None = None  # "stop" or "length" on the last delta
    usage: Usage | None = None  # on the last delta


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage


@runtime_checkable
class Generator(Protocol):
    base_model: str
    context_length: int

    def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]: ...

    async def complete(self, req: GenerationRequest) -> Completion: ...

    async def models(self) -> list[str]: ...

    async def load_adapter(self, name: str, path: Path) -> None: ...

    async def unload_adapter(self, name: str) -> None: ...

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int: ...

    async def aclose(self) -> None: ...


async def collect(deltas: AsyncIterator[Delta]) -> Completion:
    """Join a stream into one completion."""
    parts: list[str] = []
    finish, usage = "stop", Usage(0, 0)
    async for d in deltas:
        parts.append(d.text)
        if d.finish_reason is not None:
            finish = d.finish_reason
        if d.usage is not None:
            usage = d.usage
    return Completion("".join(parts), finish, usage)


class ChatTokenizer:
    """A model folder's tokenizer and chat template, loaded on first use, for counting prompt tokens.

    The prompt is rendered with the template and encoded without added special tokens, as vLLM does
    for chat requests (the template writes its own), so the count matches the server's.
    """

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self._tok: PreTrainedTokenizerBase | None = None
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        with self._lock:
            if self._tok is None:
                from transformers import AutoTokenizer

                if not (self.model_dir / "tokenizer_config.json").is_file() and not (self.model_dir / "tokenizer.json").is_file():
                    raise ModelNotAvailable(f"{self.model_dir} holds no tokenizer (tokenizer.json / tokenizer_config.json)")
                self._tok = AutoTokenizer.from_pretrained(self.model_dir)
            return self._tok

    def render(self, messages: Sequence[Message]) -> str:
        tok = self.tokenizer
        if not tok.chat_template:
            raise ModelNotAvailable(f"the tokenizer in {self.model_dir} has no chat template")
        text = tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        assert isinstance(text, str)
        return text

    def encode_prompt(self, messages: Sequence[Message]) -> list[int]:
        ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        return list(ids)

    def count(self, messages: Sequence[Message]) -> int:
        return len(self.encode_prompt(messages))

    def count_text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def model_context_length(model_dir: Path) -> int:
    """The context length a Hugging Face model folder declares."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelNotAvailable(f"cannot read {model_dir / 'config.json'}: {e}") from e
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = cfg.get(key) or (cfg.get("text_config") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise ModelNotAvailable(f"{model_dir / 'config.json'} states no context length; set generation.max_model_len")


def check_prompt_fits(prompt_tokens: int, context_length: int) -> None:
    """At least one token must fit after the prompt."""
    if prompt_tokens >= context_length:
        raise PromptTooLong(
            f"the prompt is {prompt_tokens} tokens; the model's context limit is {context_length} tokens "
            "(prompt plus at least one answer token)"
        )


def fit_max_tokens(prompt_tokens: int, max_tokens: int, context_length: int) -> int:
    """Answer tokens that still fit in the context after the prompt."""
    return max(1, min(max_tokens, context_length - prompt_tokens))
