"""How long a question may be. The model reads the question, the sources and the answer in one
context; a question that fills it leaves no room for the sources and gets an answer from nowhere.
So a question may take a share of the room the answer leaves, and a longer one is refused with a
message that names the limit and where it comes from."""

from __future__ import annotations

from lorebase.errors import PromptTooLong
from lorebase.generation.backend import Generator

QUESTION_SHARE = 4  # a question may use a quarter of the prompt room; the sources get the rest


def question_token_limit(context_length: int, answer_tokens: int) -> int:
    return max(16, (context_length - answer_tokens - 8) // QUESTION_SHARE)


def check_question(question: str, generator: Generator, answer_tokens: int) -> None:
    """Raise PromptTooLong, in words a person can act on, when `question` is over the limit."""
    limit = question_token_limit(generator.context_length, answer_tokens)
    # characters first: no tokenizer packs more than ~8 characters a token, and counting a huge
    # message token by token is what the limit is there to spare
    tokens = generator.count_prompt_tokens([{"role": "user", "content": question}]) if len(question) <= limit * 8 else None
    if tokens is not None and tokens <= limit:
        return
    size = f"{tokens:,} tokens" if tokens is not None else f"{len(question):,} characters"
    raise PromptTooLong(
        f"This message is too long to answer well ({size}). A question may use at most {limit:,} tokens: "
        f"a quarter of what the model {generator.base_model} reads at once ({generator.context_length:,} tokens, "
        f"less {answer_tokens:,} for the answer), so that the sources fit beside it. "
        "Please shorten it, or ask about one part at a time."
    )
