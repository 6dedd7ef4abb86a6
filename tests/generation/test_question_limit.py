"""An over-long question is refused with the limit, derived from the model's context, in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import PromptTooLong
from lorebase.generation.backend import ChatTokenizer
from lorebase.generation.question_limit import check_question, question_token_limit


class Model:
    """The counting part of a generator, on the tiny model's real tokenizer and chat template."""

    def __init__(self, folder: Path, context_length: int) -> None:
        self.base_model = "tiny"
        self.context_length = context_length
        self._tok = ChatTokenizer(folder)

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return self._tok.count(messages)


def test_the_limit_is_a_share_of_the_context_and_named_when_exceeded(tiny_llama: Path) -> None:
    model = Model(tiny_llama, 2048)
    limit = question_token_limit(2048, 24)
    assert limit == (2048 - 24 - 8) // 4
    check_question("How long does a failed job wait before its first retry?", model, 24)  # type: ignore[arg-type]
    with pytest.raises(PromptTooLong) as e:
        check_question("retry " * 400, model, 24)  # type: ignore[arg-type]
    msg = str(e.value)
    assert f"at most {limit:,} tokens" in msg and "2,048 tokens" in msg and "tiny" in msg
    assert "tokens)" in msg  # the message's own size, counted
    with pytest.raises(PromptTooLong, match=r"20,000 characters"):
        check_question("x" * 20_000, model, 24)  # type: ignore[arg-type]  # refused before counting
