"""Do the retrieved chunks answer a question about a repository? A larger generator reads the top
chunks and the question once, and its log-odds of "yes" against "no" as the next token is the
score; the answer abstains below a threshold.

Why a second model: SWE-QA questions describe code in other words than the code uses, so whether
the question's words occur in the sources does not separate answerable questions from ones the
repository cannot answer, and the served 0.5B model asked the same thing scores at chance (AUC
0.47-0.54). The 1.5B profile reading the top 3 chunks separates them: AUC 0.92 on two SWE-QA
repositories where the question's wording and the threshold were chosen, 0.86 on the three dev
repositories (docs/benchmarks.md, "Twelfth run"). One forward pass, no generation.

`bench/bench_answerability_judge.py` scores with this module, so its thresholds are this gate's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorebase.errors import ModelNotAvailable
from lorebase.settings import Settings

if TYPE_CHECKING:
    from lorebase.index.search import Hit

log = logging.getLogger(__name__)

TOP_CHUNKS = 3
CHUNK_CHARS = 600
SYSTEM = ("You check whether code and documentation excerpts contain the answer to a question about a software "
          "project. Reply with one word: yes or no.")
ASK = "Can the question be answered from these excerpts alone? Reply yes or no."


def excerpts(hits: Sequence[Hit], top: int = TOP_CHUNKS, chars: int = CHUNK_CHARS) -> str:
    """The top chunks as the judge reads them: each under its path (or title), cut to ``chars``."""
    return "\n\n".join(f"[{h.source.path or h.source.title}]\n{h.chunk.text[:chars]}" for h in hits[:top])


def messages(question: str, text: str, ask: str = ASK) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Excerpts:\n{text}\n\nQuestion: {question}\n\n{ask}"}]


def judged(hits: Sequence[Hit]) -> bool:
    """Only questions whose top source is in a repository: the judge was chosen and measured on code
    questions; meeting questions already abstain when they should (1.000 on the QMSum dev set)."""
    return bool(hits) and hits[0].source.kind != "transcript"


class AnswerabilityJudge:
    """The model loads on first use (seconds; it is a second model beside the served one) and scores
    one question at a time: on 2 cores two forward passes at once are no faster than in turn. Async
    callers queue on the judge's own thread, not in the event loop's shared pool, where questions
    waiting for the judge would hold the threads other questions' retrieval needs."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answerability")
        self._model: Any = None
        self._tok: Any = None
        self._yes: list[int] = []
        self._no: list[int] = []

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from lorebase.index.embeddings import resolve_dtype

        t0 = time.monotonic()
        log.info("loading the answerability judge %s from %s", self.name, self.folder)
        try:
            tok = AutoTokenizer.from_pretrained(self.folder)
            # bf16 only where the CPU computes in it: elsewhere it is emulated and several times slower
            dtype = torch.bfloat16 if resolve_dtype("auto") == "bfloat16" else torch.float32
            model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=dtype)
        except (OSError, ValueError, KeyError) as e:
            raise ModelNotAvailable(f"the answerability judge {self.name} at {self.folder} could not be loaded "
                                    f"({e}); set answer.answerability_judge to another model or off") from e
        model.eval()
        # every spelling the reply may start with; a word the tokenizer splits counts by its first piece,
        # and a piece both words start with (a bare leading space) tells nothing
        yes = {tok.encode(w, add_special_tokens=False)[0] for w in (" yes", "yes", "Yes")}
        no = {tok.encode(w, add_special_tokens=False)[0] for w in (" no", "no", "No")}
        self._yes, self._no = sorted(yes - no), sorted(no - yes)
        if not self._yes or not self._no:
            raise ModelNotAvailable(f"the answerability judge {self.name}'s tokenizer has no token that tells "
                                    "\"yes\" from \"no\"; set answer.answerability_judge to another model or off")
        self._tok, self._model = tok, model
        log.info("answerability judge ready in %.1f s", time.monotonic() - t0)

    async def ascore(self, question: str, hits: Sequence[Hit]) -> float:
        """``score`` on the judge's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.score, question, hits)

    def score(self, question: str, hits: Sequence[Hit]) -> float:
        """Log-odds that the top chunks answer ``question`` (blocking: call it in a thread)."""
        return self.score_text(question, excerpts(hits))

    def score_text(self, question: str, text: str) -> float:
        return self.score_messages(messages(question, text))

    def score_messages(self, chat: list[dict[str, str]]) -> float:
        """Log-odds of "yes" against "no" as the reply's first token to ``chat``."""
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            prompt = self._tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
            ids = self._tok(prompt, return_tensors="pt").input_ids
            with torch.no_grad():
                # the last position's logits only: all of them would be a (tokens x vocabulary) matrix, 300 MB
                # for the 1.5B; a model class that does not take the argument computes them all
                try:
                    out = self._model(ids, logits_to_keep=1)
                except TypeError:
                    out = self._model(ids)
                logp = torch.log_softmax(out.logits[0, -1].float(), -1)
            return float(torch.logsumexp(logp[self._yes], 0) - torch.logsumexp(logp[self._no], 0))


def open_answerability_judge(settings: Settings) -> AnswerabilityJudge | None:
    """The judge `answer.answerability_judge` names, or None when there is none (nothing is loaded yet)."""
    from lorebase.offline_models import answerability_judge_path

    found = answerability_judge_path(settings)
    return AnswerabilityJudge(*found) if found is not None else None
