"""RAG-style supervised examples from QA pairs (RAFT), in exactly the prompt the answer service
serves: the question, numbered sources ``[S#]`` made of each retrieved chunk's evidence lines (the
gold chunk among distractors, shuffled), and a short target that says the answer first and cites
the right source after each sentence.

Prompts are built with :func:`lorebase.generation.prompts.answer_messages` from evidence lines picked
by :func:`lorebase.generation.evidence.select`, the functions the answer service serves with. A
share of examples leaves the gold chunk out; their target is the abstention text, so the model
learns to say so rather than invent. Distractors that would support the gold answer on their own
are skipped, which keeps both targets true of the prompt they go with.

The targets are checked themselves: each sentence must pass the served support check
(:func:`lorebase.generation.support.check_claim`) against the evidence text it cites, without the
source's header line, so a target never teaches copying "path:1-20@abc1234" or "Lecture @ 03:05"
instead of answering. A sentence that fails is fixed where the fix is mechanical (a leading "At
03:05," dropped, the citation moved to the one source that supports it) and dropped otherwise; an
example left with no sentence is dropped. Every fix and drop is counted in :class:`BuildStats`.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from lorebase.citations import cite
from lorebase.finetune.abstention import Retrieve
from lorebase.finetune.qa_drafts import as_seen, strip_citations
from lorebase.generation import evidence as ev_select
from lorebase.generation import grounding
from lorebase.generation.answer import MIN_CONTENT_WORDS
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence, answer_messages
from lorebase.generation.support import check_claim, squash
from lorebase.store import Store
from lorebase.store.models import Chunk, QAPair, Source

Messages = list[dict[str, str]]
Embed = Callable[[list[str]], np.ndarray]
MAX_TARGET_SENTENCES = 3  # the served prompt asks for one to three sentences
# "At 03:05, the lecturer says ..." / "In calc/ops.py, ...": the place is the citation's job, and
# the evidence text does not hold it (the header line does).
NO_TARGET = "no sentence of the answer passes the support check against the gold evidence lines"
NO_FIT = "the prompt does not fit max_length"
_PLACE_LEAD = re.compile(r"^(?:At|In|From)\s+[^,]{1,80},\s+")


@dataclass
class SFTExample:
    pair_id: int
    question: str
    prompt: Messages
    completion: Messages
    reference: str  # the target without citations (what the model is taught to say), or the abstention text
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
    skipped: dict[str, int] = field(default_factory=dict)  # examples not built, by reason
    sentences_dropped: dict[str, int] = field(default_factory=dict)  # target sentences left out, by reason
    fixed: dict[str, int] = field(default_factory=dict)  # targets or evidence mended, by what was done

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def drop(self, reason: str) -> None:
        self.sentences_dropped[reason] = self.sentences_dropped.get(reason, 0) + 1

    def fix(self, what: str) -> None:
        self.fixed[what] = self.fixed.get(what, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"built": self.built, "withheld": self.withheld, "skipped": dict(self.skipped),
                "sentences_dropped": dict(self.sentences_dropped), "fixed": dict(self.fixed)}


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


def checked_target(answer: str, evidence: Sequence[Evidence], threshold: float, stats: BuildStats | None = None) -> str | None:
    """The target as the served check would show it: each sentence of ``answer`` kept only if it
    passes :func:`check_claim` against the evidence text it cites (header lines not included);
    mechanical fixes first. At most MAX_TARGET_SENTENCES sentences; None when none passes."""
    texts = {e.label: e.text for e in evidence}
    code = {e.label for e in evidence if e.citation.kind == "code"}
    headers = {h for e in evidence for h in (squash(e.citation.label), squash(e.citation.path or "")) if len(h) >= 6}
    note: Callable[[str], None] = stats.drop if stats is not None else (lambda _r: None)
    mend: Callable[[str], None] = stats.fix if stats is not None else (lambda _r: None)

    def passes(bare: str, labels: Sequence[str]) -> bool:
        return check_claim(bare, " ".join(texts[lbl] for lbl in labels), threshold, code=bool(code & set(labels))).supported

    kept: list[str] = []
    for sent in grounding.split_sentences(answer):
        labels = [lbl for lbl in dict.fromkeys(grounding.CITATION.findall(sent)) if lbl in texts]
        bare = strip_citations(sent)
        if len(grounding.content_words(bare)) < MIN_CONTENT_WORDS:
            continue  # the served check would not show it either
        lead, colon, rest = bare.partition(":")
        if colon and rest.strip() and squash(lead) in headers:  # "Commit abc1234: Add a ledger." says "Add a ledger."
            bare = rest.strip()[:1].upper() + rest.strip()[1:]
            mend("header lead removed (the citation says where)")
        if any(h in squash(bare) for h in headers):
            note("copies a source's header line")
            continue
        ok = bool(labels) and passes(bare, labels)
        if not ok and _PLACE_LEAD.match(bare):
            shorter = _PLACE_LEAD.sub("", bare)
            shorter = shorter[:1].upper() + shorter[1:]
            if labels and passes(shorter, labels):
                bare, ok = shorter, True
                mend("place lead removed (the citation says where)")
        if not ok:
            # The served checker's fallback: the single source that supports the sentence.
            for lbl in sorted(texts, key=lambda x: -grounding.support(bare, texts[x])):
                if passes(bare, [lbl]):
                    labels, ok = [lbl], True
                    mend("citation moved to the source that supports the sentence")
                    break
        if not ok:
            note("fails the support check against its cited evidence")
            continue
        kept.append(_cited(bare, labels))
        if len(kept) >= MAX_TARGET_SENTENCES:
            break
    return " ".join(kept) or None


def _cited(sentence: str, labels: Sequence[str]) -> str:
    """``"It does X."`` -> ``"It does X [S1]."``"""
    marks = " ".join(f"[{lbl}]" for lbl in labels)
    s = sentence.rstrip()
    if s and s[-1] in ".!?":
        return f"{s[:-1].rstrip()} {marks}{s[-1]}"
    return f"{s} {marks}."


class ExampleBuilder:
    """Turns QA pairs into prompt-completion examples. ``count_prompt`` counts a chat prompt's tokens
    (with the generation prompt), ``count_text`` a plain text's; ``embed`` (unit vectors, the
    retriever's embedder) scores evidence lines as the answer service does (None: words only)."""

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
        evidence_chars: int = 280,
        embed: Embed | None = None,
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
        self.evidence_chars = evidence_chars
        self.embed = embed
        self.stats = BuildStats()

    def build_all(self, pairs: Sequence[QAPair], *, withhold: bool = True, limit: int | None = None) -> list[SFTExample]:
        """Examples from ``pairs`` in order, until ``limit`` are built (pairs whose target cannot pass
        the check are skipped, so more pairs than examples may be read)."""
        out: list[SFTExample] = []
        for p in pairs:
            if limit is not None and len(out) >= limit:
                break
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

    def _select(self, query: str, chunks: Sequence[tuple[Chunk, Source]]) -> list[Evidence]:
        """Each chunk's evidence lines for ``query``, as the answer service picks them (label S0 for now)."""
        if not chunks:
            return []
        cites = [cite(src, c, "S0") for c, src in chunks]
        qvec = None
        if self.embed is not None:
            qvec = np.asarray(self.embed([query]), dtype=np.float32)[0]
            qvec /= max(float(np.linalg.norm(qvec)), 1e-9)
        picked = ev_select.select(query, [(ci, c.text, c.meta) for ci, (c, _) in zip(cites, chunks, strict=True)],
                                  self.embed, qvec, self.evidence_chars)
        return [Evidence(p.citation, p.text) for p in picked]

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
        evs = self._select(pair.question, [(c, s) for c, s, _ in items])
        keep = list(range(len(items)))
        built = self._fit(pair.question, items, evs, keep, answer if gold else None)
        if built == NO_TARGET:
            # The lines picked for the question miss the answer: pick the gold chunk's lines for the
            # question and the answer together (the evidence the answer rests on), distractors as they were.
            around = self._select(f"{pair.question} {reference}", [(c, s) for c, s, g in items if g is not None])
            it = iter(around)
            evs = [next(it) if g is not None else e for (_, _, g), e in zip(items, evs, strict=True)]
            built = self._fit(pair.question, items, evs, keep, answer)
            if not isinstance(built, str):
                self.stats.fix("gold evidence re-selected around the answer")
        if isinstance(built, str):
            self.stats.skip(built)
            return None
        keep, shown, target = built
        if not gold:
            self.stats.withheld += 1
        self.stats.built += 1
        gold_labels = [e.label for i, e in zip(keep, shown, strict=True) if items[i][2] is not None]
        return SFTExample(
            pair_id=pair.id,
            question=pair.question,
            prompt=answer_messages(pair.question, shown),
            completion=[{"role": "assistant", "content": target}],
            reference=strip_citations(target) if gold else reference,  # what the model is taught to say
            gold_labels=gold_labels,
            abstain=not gold,
            evidence=shown,
            context_chunk_ids=[items[i][0].id for i in keep],
            category=pair.category if gold else "abstention",
            kind=pair.kind,
        )

    def _fit(
        self, question: str, items: list[tuple[Chunk, Source, int | None]], evs: list[Evidence], keep: list[int],
        answer: str | None,
    ) -> tuple[list[int], list[Evidence], str] | str:
        """Which items stay (in order), their evidence labelled S1..Sn by position, and the checked
        target, so prompt and target fit max_length: distractors are dropped from the end; a gold
        source never is. ``answer`` cites gold chunk i as [S(i+1)]; None: an abstention example.
        On failure, the reason (NO_TARGET or NO_FIT)."""
        keep = list(keep)
        while True:
            shown = [Evidence(evs[i].citation.model_copy(update={"id": f"S{pos}"}), evs[i].text)
                     for pos, i in enumerate(keep, start=1)]
            relabelled = ""
            if answer is None:
                target = ABSTAIN_TEXT
            else:
                mapping = {f"S{items[i][2] + 1}": f"S{pos}" for pos, i in enumerate(keep, start=1)  # type: ignore[operator]
                           if items[i][2] is not None}
                relabelled = _relabel(answer, mapping)
                checked = checked_target(relabelled, shown, self.threshold)
                if checked is None or not set(grounding.CITATION.findall(checked)) & set(mapping.values()):
                    return NO_TARGET  # nothing left, or only sentences a distractor happens to support
                target = checked
            if self.count_prompt(answer_messages(question, shown)) + self.count_text(target) + 2 <= self.max_length:
                if answer is not None:  # count the drops and fixes once, for the target actually used
                    checked_target(relabelled, shown, self.threshold, self.stats)
                return keep, shown, target
            droppable = [i for i in keep if items[i][2] is None]
            if not droppable or (answer is None and len(keep) == 1):
                return NO_FIT
            keep.remove(droppable[-1])
