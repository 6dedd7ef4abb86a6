"""The one verdict on an answer, carried from the check to the API, the UI, stored feedback and the
eval report. Nothing downstream parses answer text to learn whether it was verified."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AnswerMode = Literal["generated", "extractive", "abstained", "summary", "chat"]


class SentenceSupport(BaseModel):
    text: str
    labels: list[str] = Field(default_factory=list, description="Sources (S1…) that support this sentence.")
    supported: bool
    reason: str = ""


class Verdict(BaseModel):
    """How the shown answer relates to its sources.

    - `generated`: the model's sentences that the check verified, each with its sources (sentences it
      could not verify were removed; `removed` counts them);
    - `extractive`: nothing the model wrote held up, so the answer quotes the best evidence lines
      (`sentences`: the model's turned-down ones, then the quotes);
    - `abstained`: retrieval found nothing relevant, or the model said the sources do not hold the
      answer and no evidence line clearly does;
    - `summary`, `chat`: other modes (summaries are checked bullet by bullet; plain chat is not checked).
    """

    mode: AnswerMode
    supported: bool = Field(description="Every sentence shown is supported by a source it cites.")
    abstained: bool
    reason: str
    sentences: list[SentenceSupport] = Field(default_factory=list)
    removed: int = Field(0, description="Model sentences dropped because no cited source supports them.")

    @property
    def verified(self) -> bool:
        return self.supported
