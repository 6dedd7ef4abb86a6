"""`lorebase eval answers`: answer quality on public question sets, scored without a judge.

Question files (JSONL, one object per line), as `bench/build_evalsets.py` writes them:

    code:         {"id", "repo", "commit", "question", "answer", "gold_files": [paths]}
    meetings:     {"id", "meeting", "question", "answer", "gold_spans": [[start_s, end_s], ...]}
    tutorials:    {"id", "video", "question", "answer", "gold_spans": [[start_s, end_s]]}
                  (a course's lecture videos: searched across every transcript of the home, and
                  cited gold only within the video named)
    unanswerable: {"id", "set": "code"|"meetings", "question"}   (the answer is in no source)

Per question: **verified** (the verdict says every shown sentence is supported), **cites gold** (a
source the answer cites is a gold file, or overlaps a gold time span of the right meeting),
**correct** (ROUGE-L F1 and embedder cosine against the reference), abstention on unanswerable
questions and false abstention on answerable ones, prompt tokens, time to first token and latency.
The `extractive` row needs no generator: the top hit's best-matching lines are the answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lorebase.errors import InvalidInput
from lorebase.eval.stats import mean, percentile
from lorebase.generation.grounding import CITATION

if TYPE_CHECKING:
    from lorebase.citations import Citation
    from lorebase.generation.conversation import ConversationService

Progress = Callable[[str], None]


@dataclass
class AnswerQuestion:
    id: str
    question: str
    kind: str  # code | meetings | unanswerable
    answer: str = ""
    repo: str | None = None
    meeting: str | None = None
    gold_files: list[str] = field(default_factory=list)
    gold_spans: list[tuple[float, float]] = field(default_factory=list)
    lecture: str | None = None  # the meeting's lecture key when it is not meetings/<meeting>
    course: bool = False  # a lecture of a course: searched across all of the home's transcripts


def load_answer_questions(path: Path) -> list[AnswerQuestion]:
    out: list[AnswerQuestion] = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            q = str(d["question"]).strip()
        except (ValueError, KeyError) as e:
            raise InvalidInput(f"{path}:{n}: not a question object ({e})") from e
        if "gold_files" in d:
            kind = "code"
        elif "gold_spans" in d:
            kind = "meetings"
        else:
            kind = "unanswerable"
        out.append(AnswerQuestion(
            id=str(d.get("id") or f"{Path(path).stem}-{n}"), question=q, kind=kind, answer=str(d.get("answer") or ""),
            repo=d.get("repo"), meeting=d.get("meeting") or d.get("video"), gold_files=list(d.get("gold_files") or []),
            gold_spans=[(float(a), float(b)) for a, b in d.get("gold_spans") or []], lecture=d.get("lecture"),
            course="video" in d,
        ))
    return out


def _slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (text or "").lower())


def cites_gold(q: AnswerQuestion, cited: Sequence[Citation]) -> bool:
    for c in cited:
        if q.kind == "code" and c.path and (c.path in q.gold_files or any(c.path.endswith("/" + g) for g in q.gold_files)):
            return True
        if q.kind == "meetings" and c.start_time is not None and c.end_time is not None:
            names = {_slug(c.title), _slug(Path(c.path).stem if c.path else None)}
            if _slug(q.meeting) in names and any(c.start_time < b and c.end_time > a for a, b in q.gold_spans):
                return True
    return False


def cited_in(text: str, sources: Sequence[Citation]) -> list[Citation]:
    labels = set(CITATION.findall(text))
    return [c for c in sources if c.id in labels]


def scope(q: AnswerQuestion) -> dict[str, Any] | None:
    """Search filters for a question: its repository or its meeting, as a user of a corpus that
    holds several would choose them (QMSum's queries are about one meeting; SWE-QA's about one
    repository, often without naming it). A course's question is searched across all its lectures:
    a student does not know which video answers it."""
    if q.course:
        return {"kind": "transcript"}
    if q.meeting:
        return {"lecture": q.lecture or f"meetings/{q.meeting}"}
    if q.repo:
        return {"repo": q.repo}
    return None


def rouge_l(reference: str, answer: str) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return float(scorer.score(reference, CITATION.sub("", answer))["rougeL"].fmeasure)


class AnswerBench:
    """Runs one row (a generator, or the extractive baseline) over the questions."""

    def __init__(self, conversation: ConversationService, concurrency: int = 8) -> None:
        self.conv = conversation
        self.concurrency = concurrency

    async def run(self, questions: Sequence[AnswerQuestion], *, extractive: bool = False, model: str | None = None,
                  progress: Progress | None = None, temperature: float | None = None) -> list[dict[str, Any]]:
        """One record per question; ``temperature`` (None: the settings') samples answers, e.g. for preference pairs."""
        sem = asyncio.Semaphore(1 if extractive else self.concurrency)
        done = 0

        async def one(q: AnswerQuestion) -> dict[str, Any]:
            nonlocal done
            async with sem:
                rec = await (self._extractive(q) if extractive else self._answer(q, model, temperature))
            done += 1
            if progress:
                progress(f"{done}/{len(questions)} {q.id}")
            return rec

        records = await asyncio.gather(*(one(q) for q in questions))
        self._similarity(records, questions)
        return records

    async def _answer(self, q: AnswerQuestion, model: str | None, temperature: float | None = None) -> dict[str, Any]:
        from lorebase.generation.conversation import ConversationRequest

        t0 = time.perf_counter()
        ttft: float | None = None
        final = None
        async for ev in self.conv.stream(ConversationRequest.ask(q.question, model=model, filters=scope(q), temperature=temperature)):
            if ev.type == "delta" and ev.text and ttft is None:
                ttft = time.perf_counter() - t0
            if ev.result is not None:
                final = ev.result
        latency = time.perf_counter() - t0
        assert final is not None
        cited = cited_in(final.text, final.sources)
        v = final.verdict
        rec = self._record(q, final.text, v.mode, v.supported, v.abstained, cited, final.usage.prompt_tokens, ttft, latency)
        rec["reason"] = v.reason  # why it abstained or quoted: the model's own abstention, the subject words, ...
        # each sentence the model wrote with the check's ruling: why answers end up quoted
        rec["sentences"] = [{"text": s.text, "supported": s.supported, "reason": s.reason} for s in v.sentences]
        return rec

    async def _extractive(self, q: AnswerQuestion) -> dict[str, Any]:
        from lorebase.citations import cite
        from lorebase.generation.answer import AnswerService

        t0 = time.perf_counter()
        hits = await asyncio.to_thread(self.conv.search.retrieve, q.question, None, scope(q))
        if not hits:
            return self._record(q, "", "abstained", False, True, [], 0, None, time.perf_counter() - t0)
        top = [cite(hits[0].source, hits[0].chunk, "S1", score=hits[0].score)]
        service = AnswerService(self.conv.settings, self.conv.search, None)  # type: ignore[arg-type]  # selection only
        [sel] = await asyncio.to_thread(service._select, q.question, hits[:1], top)
        text = f"{sel.best.text} [S1]"
        latency = time.perf_counter() - t0
        return self._record(q, text, "extractive", True, False, [sel.citation], 0, latency, latency)

    @staticmethod
    def _record(q: AnswerQuestion, text: str, mode: str, verified: bool, abstained: bool, cited: Sequence[Citation],
                prompt_tokens: int, ttft: float | None, latency: float) -> dict[str, Any]:
        return {
            "id": q.id, "kind": q.kind, "question": q.question, "answer": text, "mode": mode,
            "verified": verified, "abstained": abstained,
            "cites_gold": cites_gold(q, cited) if q.kind != "unanswerable" else None,
            # how many of the cited sources are gold: citing more sources should not pass for precision
            "cited_gold": sum(cites_gold(q, [c]) for c in cited) if q.kind != "unanswerable" else None,
            "cited": [{"label": c.label, "path": c.path, "start_time": c.start_time, "end_time": c.end_time} for c in cited],
            "rougeL": rouge_l(q.answer, text) if q.answer and text else (0.0 if q.answer else None),
            "prompt_tokens": prompt_tokens, "ttft_s": ttft, "latency_s": round(latency, 3),
        }

    def _similarity(self, records: list[dict[str, Any]], questions: Sequence[AnswerQuestion]) -> None:
        pairs = [(r, q) for r, q in zip(records, questions, strict=True) if q.answer]
        if not pairs:
            return
        emb = self.conv.search.embedder
        embed = emb.embed
        a = embed([CITATION.sub("", r["answer"]) or "-" for r, _ in pairs])
        b = embed([q.answer for _, q in pairs])
        for (r, _), x, y in zip(pairs, a, b, strict=True):
            r["similarity"] = round(float(np.dot(x, y)), 4)


def summarize_rows(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The benchmark's metrics over one row's records on one set."""
    answerable = [r for r in records if r["kind"] != "unanswerable"]
    unanswerable = [r for r in records if r["kind"] == "unanswerable"]

    def share(rows: Sequence[dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> float | None:
        return round(sum(1 for r in rows if pred(r)) / len(rows), 3) if rows else None

    answered = [r for r in answerable if not r["abstained"] and r.get("cited_gold") is not None]
    n_cited = sum(len(r["cited"]) for r in answered)
    ttfts = [r["ttft_s"] for r in records if r["ttft_s"] is not None]
    lat = [r["latency_s"] for r in records]
    return {
        "n": len(records),
        "verified_and_cites_gold": share(answerable, lambda r: bool(r["verified"] and r["cites_gold"])),
        "verified": share(answerable, lambda r: bool(r["verified"])),
        "cites_gold": share(answerable, lambda r: bool(r["cites_gold"])),
        "extractive_share": share(answerable, lambda r: r["mode"] == "extractive"),
        "citations_mean": round(n_cited / len(answered), 2) if answered else None,
        "citation_precision": round(sum(r["cited_gold"] for r in answered) / n_cited, 3) if n_cited else None,
        "rougeL": round(mean([r["rougeL"] for r in answerable if r["rougeL"] is not None]) or 0.0, 4) if answerable else None,
        "similarity": round(mean([r.get("similarity", 0.0) for r in answerable]) or 0.0, 4) if answerable else None,
        "abstention": share(unanswerable, lambda r: bool(r["abstained"])),
        "false_abstention": share(answerable, lambda r: bool(r["abstained"])),
        "prompt_tokens_p50": percentile([float(r["prompt_tokens"]) for r in records], 50) if records else None,
        "ttft_p50_s": percentile(ttfts, 50) if ttfts else None,
        "latency_p50_s": percentile(lat, 50) if lat else None,
    }


# --- the same metrics on a model's answer to a given prompt (the fine-tuning gate) ------------------

# The metrics the fine-tuning gate compares; false abstention is better lower.
GATE_METRICS = ("verified_and_cites_gold", "rougeL", "abstention", "false_abstention")
LOWER_IS_BETTER = frozenset({"false_abstention"})


@dataclass(frozen=True)
class CheckedAnswer:
    shown: str  # what the served check keeps of the model's text ("" when nothing)
    verified: bool  # at least one sentence the model wrote passed (the extractive fallback is not counted)
    abstained: bool  # the model said the sources do not hold the answer, and nothing else survived
    cited: list[str]  # labels cited by the sentences kept


def check_answer(text: str, evidence: Sequence[Any], threshold: float) -> CheckedAnswer:
    """Run the served sentence check on a model's whole answer to a prompt built from ``evidence``
    (prompts.Evidence): the same splitting and per-sentence check the answer stream applies."""
    from lorebase.generation.answer import (
        _SentenceChecker,  # the served checker itself, not a copy
    )
    from lorebase.generation.sentence_stream import SentenceStream

    checker = _SentenceChecker(evidence, threshold)
    cutter = SentenceStream()
    shown = [out for piece in [*cutter.feed(text), *cutter.close()] if (out := checker.take(piece)) is not None]
    cited = sorted({lbl for r in checker.results if r.supported for lbl in r.labels}, key=lambda x: (len(x), x))
    return CheckedAnswer(" ".join(shown), bool(shown), checker.abstained and not shown, cited)


def gate_record(kind: str, reference: str, answer: str, evidence: Sequence[Any], gold_labels: Sequence[str],
                threshold: float, prompt_tokens: int = 0, latency: float = 0.0) -> dict[str, Any]:
    """One held-out example as a benchmark record (the keys summarize_rows reads): ``kind`` is
    "unanswerable" for an example whose evidence lacks the answer; cites gold means a kept sentence
    cites a gold source label."""
    c = check_answer(answer, evidence, threshold)
    answerable = kind != "unanswerable"
    return {
        "kind": kind, "answer": answer, "shown": c.shown,
        "mode": "abstained" if c.abstained else ("generated" if c.verified else "unverified"),
        "verified": c.verified, "abstained": c.abstained,
        "cites_gold": bool(set(c.cited) & set(gold_labels)) if answerable else None, "cited": c.cited,
        "rougeL": (rouge_l(reference, answer) if answer.strip() else 0.0) if answerable else None,
        "prompt_tokens": prompt_tokens, "ttft_s": None, "latency_s": round(latency, 3),
    }


def paired_bootstrap(
    base: Sequence[dict[str, Any]], tuned: Sequence[dict[str, Any]], metrics: Sequence[str] = GATE_METRICS,
    samples: int = 1000, seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """95% interval of (tuned - base) for each metric, resampling the questions with replacement
    (both rows on the same draw, so the interval is of the paired difference): the noise of a
    difference measured on this many questions. None where a metric is never defined."""
    import random

    if len(base) != len(tuned):
        raise ValueError("both rows must answer the same questions")
    rng = random.Random(seed)
    n = len(base)
    diffs: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(samples if n else 0):
        idx = [rng.randrange(n) for _ in range(n)]
        a = summarize_rows([base[i] for i in idx])
        b = summarize_rows([tuned[i] for i in idx])
        for m in metrics:
            if a.get(m) is not None and b.get(m) is not None:
                diffs[m].append(float(b[m]) - float(a[m]))
    out: dict[str, tuple[float, float] | None] = {}
    for m, d in diffs.items():
        out[m] = (round(float(np.percentile(d, 2.5)), 4), round(float(np.percentile(d, 97.5)), 4)) if d else None
    return out
