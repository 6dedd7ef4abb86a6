"""RAG-style supervised examples from QA pairs (RAFT): the question, the gold chunk among retrieved
distractors in shuffled order, and a target answer citing the gold chunk's position.

Prompts are built with :func:`lorebase.generation.prompts.answer_messages`, the function the answer
service serves with, so training sees exactly the serving prompt. A share of examples leaves the
gold chunk out; their target is the abstention text, so the model learns to say so rather than
invent. Distractors that would support the gold answer on their own are skipped, which keeps both
targets true of the prompt they go with.

Prompts must fit ``max_length`` with the answer: sources are shortened (a distractor keeps its
start, the gold chunk a window around the sentence that holds its answer) and, if still too long,
distractors are dropped; the gold chunk never is.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from lorebase.citations import cite
from lorebase.finetune.abstention import Retrieve
from lorebase.finetune.qa_drafts import as_seen, strip_citations
from lorebase.finetune.templates import sentences
from lorebase.generation import grounding
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence, answer_messages
from lorebase.store import Store
from lorebase.store.models import Chunk, QAPair, Source

Messages = list[dict[str, str]]
MIN_SOURCE_CHARS = 160


@dataclass
class SFTExample:
    pair_id: int
    question: str
    prompt: Messages
    completion: Messages
    reference: str  # the pair's answer without citations, or the abstention text
    gold_labels: list[str]  # labels of the gold chunks in this prompt (none when withheld)
    abstain: bool
    evidence: list[Evidence]
    context_chunk_ids: list[int]
    category: str
    kind: str | None

    @property
    def target(self) -> str:
        return self.completion[0]["content"]

    def row(self) -> dict[str, Any]:
        """What the trainer reads: trl's conversational prompt-completion format."""
        return {"prompt": self.prompt, "completion": self.completion}

    def record(self) -> dict[str, Any]:
        """What the run folder keeps of the example, to trace every training target to its pair."""
        return {"pair_id": self.pair_id, "category": self.category, "kind": self.kind, "abstain": self.abstain,
                "gold_labels": self.gold_labels, "context_chunk_ids": self.context_chunk_ids, **self.row()}


@dataclass
class BuildStats:
    built: int = 0
    withheld: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def balanced(pairs: Sequence[QAPair], n: int, seed: int) -> list[QAPair]:
    """Up to ``n`` pairs taken round-robin over categories (each shuffled with ``seed``), so the
    plentiful kinds (e.g. code locations) do not crowd out the rare ones."""
    groups: dict[str, list[QAPair]] = defaultdict(list)
    for p in pairs:
        groups[p.category].append(p)
    rng = random.Random(seed)
    order = sorted(groups)
    for name in order:
        rng.shuffle(groups[name])
    out: list[QAPair] = []
    while len(out) < n and any(groups[g] for g in order):
        for g in order:
            if groups[g] and len(out) < n:
                out.append(groups[g].pop())
    return out


def _relabel(answer: str, mapping: dict[str, str]) -> str:
    return grounding.CITATION.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", answer)


def _focus(text: str, answer: str) -> int:
    """Character offset of the sentence of ``text`` that shares the most words with ``answer``."""
    want = set(grounding.content_words(answer))
    best, where = -1, 0
    for s in sentences(text):
        shared = len(want & set(grounding.content_words(s)))
        if shared > best:
            pos = text.find(s[:40])
            best, where = shared, max(pos, 0)
    return where


def _window(text: str, size: int, focus: int) -> str:
    """``size`` characters of ``text`` around ``focus`` (starting a little before it), cut at spaces."""
    if len(text) <= size:
        return text
    start = max(0, min(focus - size // 4, len(text) - size))
    piece = text[start : start + size]
    if start > 0:
        piece = "… " + piece.split(" ", 1)[-1]
    if start + size < len(text):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return piece


class ExampleBuilder:
    """Turns QA pairs into prompt-completion examples. ``count_prompt`` counts a chat prompt's tokens
    (with the generation prompt), ``count_text`` a plain text's."""

    def __init__(
        self,
        store: Store,
        retrieve: Retrieve,
        count_prompt: Callable[[Messages], int],
        count_text: Callable[[str], int],
        *,
        k: int,
        withhold_share: float,
        max_length: int,
        max_answer_tokens: int,
        threshold: float,
        seed: int,
    ) -> None:
        self.store = store
        self.retrieve = retrieve
        self.count_prompt = count_prompt
        self.count_text = count_text
        self.k = k
        self.withhold_share = withhold_share
        self.max_length = max_length
        self.max_answer_tokens = max_answer_tokens
        self.threshold = threshold
        self.seed = seed
        self.stats = BuildStats()

    def build_all(self, pairs: Sequence[QAPair], *, withhold: bool = True) -> list[SFTExample]:
        out = []
        for p in pairs:
            ex = self.build(p, withhold=withhold)
            if ex is not None:
                out.append(ex)
        return out

    def build(self, pair: QAPair, *, withhold: bool = True) -> SFTExample | None:
        rng = random.Random(int.from_bytes(hashlib.sha256(f"{self.seed}:{pair.id}".encode()).digest()[:8], "big"))
        if pair.method == "abstention":
            return self._unanswerable(pair, rng)
        gold = self._chunks([int(i) for i in pair.chunk_ids])
        if len(gold) != len(pair.chunk_ids) or not gold:
            self.stats.skip("gold chunk no longer in the store")
            return None
        answer = self._cut_answer(pair.answer)
        if answer is None:
            self.stats.skip("answer longer than max_answer_tokens")
            return None
        exclude = {c.id for c, _ in gold}
        if withhold and rng.random() < self.withhold_share:
            others = self._distractors(pair.question, answer, exclude, self.k)
            if others:
                return self._example(pair, rng, others, [], ABSTAIN_TEXT, ABSTAIN_TEXT)
        others = self._distractors(pair.question, answer, exclude, max(0, self.k - len(gold)))
        return self._example(pair, rng, others, gold, answer, strip_citations(pair.answer))

    # --- parts ----------------------------------------------------------------------------------

    def _unanswerable(self, pair: QAPair, rng: random.Random) -> SFTExample | None:
        ids = [int(c["chunk_id"]) for c in (pair.provenance or {}).get("contexts", []) if "chunk_id" in c]
        contexts = self._chunks(ids)
        if len(contexts) < len(ids):  # some distractors changed since: find current ones
            withheld = set(pair.source_ids or [])
            hits = self.retrieve(pair.question, max(self.k * 4, 10))
            claim = strip_citations(str((pair.provenance or {}).get("withheld_answer") or ""))
            have = {c.id for c, _ in contexts}
            for h in hits:
                if len(contexts) >= self.k:
                    break
                if h.source.id in withheld or h.chunk.id in have:
                    continue
                if claim and grounding.support(claim, h.chunk.text) >= self.threshold:
                    continue
                contexts.append((h.chunk, h.source))
        if not contexts:
            self.stats.skip("no distractor contexts for an unanswerable pair")
            return None
        return self._example(pair, rng, contexts[: self.k], [], ABSTAIN_TEXT, ABSTAIN_TEXT)

    def _chunks(self, ids: list[int]) -> list[tuple[Chunk, Source]]:
        if not ids:
            return []
        with self.store.session() as s:
            rows = {c.id: (c, src) for c, src in s.execute(select(Chunk, Source).join(Source).where(Chunk.id.in_(ids)))}
            s.expunge_all()
        return [rows[i] for i in ids if i in rows]

    def _distractors(self, question: str, answer: str, exclude: set[int], n: int) -> list[tuple[Chunk, Source]]:
        if n <= 0:
            return []
        claim = strip_citations(answer)
        out: list[tuple[Chunk, Source]] = []
        for h in self.retrieve(question, n + len(exclude) + 6):
            if h.chunk.id in exclude:
                continue
            seen = as_seen(Evidence(cite(h.source, h.chunk, "S1"), h.chunk.text)).text
            if grounding.support(claim, seen) >= self.threshold:
                continue  # it would answer the question too: not a distractor
            out.append((h.chunk, h.source))
            if len(out) >= n:
                break
        return out

    def _cut_answer(self, answer: str) -> str | None:
        if self.count_text(answer) <= self.max_answer_tokens:
            return answer
        parts = grounding.split_sentences(answer)
        while len(parts) > 1:
            parts.pop()
            cut = " ".join(parts)
            if self.count_text(cut) <= self.max_answer_tokens and grounding.CITATION.search(cut):
                return cut
        return None

    def _example(
        self,
        pair: QAPair,
        rng: random.Random,
        distractors: list[tuple[Chunk, Source]],
        gold: list[tuple[Chunk, Source]],
        answer: str,
        reference: str,
    ) -> SFTExample | None:
        items: list[tuple[Chunk, Source, int | None]] = [(c, s, i) for i, (c, s) in enumerate(gold)]
        items += [(c, s, None) for c, s in distractors]
        rng.shuffle(items)
        focus = [_focus(c.text, reference) if g is not None else 0 for c, _, g in items]
        budget = self.max_length - self.count_text(answer) - 2
        fitted = self._fit(pair.question, items, focus, budget)
        if fitted is None:
            self.stats.skip("the prompt does not fit max_length")
            return None
        keep, texts = fitted
        evs = [Evidence(cite(items[i][1], items[i][0], f"S{pos}"), texts[i]) for pos, i in enumerate(keep, start=1)]
        mapping = {f"S{items[i][2] + 1}": f"S{pos}" for pos, i in enumerate(keep, start=1) if items[i][2] is not None}  # type: ignore[operator]
        target = _relabel(answer, mapping) if gold else answer
        if gold:
            check = grounding.check(target, [as_seen(e) for e in evs], self.threshold)
            if not check.supported:
                self.stats.skip("the shortened gold source no longer supports the answer")
                return None
        else:
            self.stats.withheld += 1
        self.stats.built += 1
        return SFTExample(
            pair_id=pair.id,
            question=pair.question,
            prompt=answer_messages(pair.question, evs),
            completion=[{"role": "assistant", "content": target}],
            reference=reference,
            gold_labels=sorted(mapping.values(), key=lambda lbl: int(lbl[1:])),
            abstain=not gold,
            evidence=evs,
            context_chunk_ids=[items[i][0].id for i in keep],
            category=pair.category if gold else "abstention",
            kind=pair.kind,
        )

    def _fit(
        self, question: str, items: list[tuple[Chunk, Source, int | None]], focus: list[int], budget: int
    ) -> tuple[list[int], dict[int, str]] | None:
        """Which items stay (in order) and their texts, so the prompt fits ``budget`` tokens: shorten
        the longest distractor (or, when none is long, the longest gold chunk), then drop distractors
        from the end; labels are given by position afterwards, so they always run S1..Sn."""
        texts = {i: c.text for i, (c, _, _) in enumerate(items)}
        sizes = {i: len(c.text) for i, (c, _, _) in enumerate(items)}  # characters kept of each (before "…" marks)
        keep = list(range(len(items)))

        def prompt() -> Messages:
            evs = [Evidence(cite(items[i][1], items[i][0], f"S{pos}"), texts[i]) for pos, i in enumerate(keep, start=1)]
            return answer_messages(question, evs)

        for _ in range(80):
            if self.count_prompt(prompt()) <= budget:
                return keep, texts
            long = [i for i in keep if sizes[i] > MIN_SOURCE_CHARS]
            others = [i for i in long if items[i][2] is None]
            pick = max(others or long, key=lambda i: sizes[i], default=None)
            if pick is None:
                droppable = [i for i in keep if items[i][2] is None]
                if not droppable:
                    return None
                keep.remove(droppable[-1])
                continue
            sizes[pick] = max(MIN_SOURCE_CHARS, int(sizes[pick] * 0.75))
            texts[pick] = _window(items[pick][0].text, sizes[pick], focus[pick])
        return None
