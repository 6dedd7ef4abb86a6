"""Builds and keeps up to date the QA-pair dataset in the store (table ``qa_pairs``).

A run compares each source's content hash with the ``source_hash`` its pairs were made from: pairs
of a changed source are retired and made anew, pairs of a deleted source are retired, and sources
with current pairs are not touched. Pairs are never deleted (``retired_at`` is set), so an old
evaluation run can still name the pairs it used. A source that yields no pair is remembered by its
content hash (a ``qa:no-pairs:`` sync cursor), so it is not re-examined until it changes. Retirements and new pairs are written in one
transaction: a crash leaves the dataset as it was.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from lorebase.finetune.abstention import Retrieve, abstention_pairs
from lorebase.finetune.dedupe import Embed, near_duplicates
from lorebase.finetune.qa_drafts import QADraft
from lorebase.finetune.self_instruct import SelfInstruct
from lorebase.finetune.splits import split_for
from lorebase.finetune.templates import Rejected, Templates
from lorebase.generation.backend import Generator
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Chunk, QAPair, Source, SyncCursor, utcnow

log = logging.getLogger(__name__)
# A source that gave no pair is remembered (with its content hash) under this cursor-name prefix,
# so it is not examined again until it changes.
NO_PAIRS = "qa:no-pairs:"


@dataclass
class QAReport:
    sources: int = 0  # sources of the chosen kinds in the store
    regenerated: int = 0  # sources whose pairs were (re)made this run
    unchanged: int = 0  # sources whose pairs were current
    retired: int = 0  # pairs retired (their source changed or is gone)
    gone: int = 0  # sources deleted since their pairs were made
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    self_instruct_chunks: int = 0
    self_instruct_questions: int = 0  # questions the generator wrote (each became a pair or a rejection)
    by_method: Counter[str] = field(default_factory=Counter)
    by_split: Counter[str] = field(default_factory=Counter)
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("by_method", "by_split"):
            d[k] = dict(d[k])
        d["rejected_reasons"] = dict(self.rejected_reasons.most_common(20))
        return d


class QAGenerator:
    """One run of QA generation over the store.

    ``embed`` finds near-duplicate questions; ``retrieve`` finds distractors for unanswerable pairs
    (None: no unanswerable pairs); ``generator`` writes questions when self-instruct is on.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        embed: Embed,
        retrieve: Retrieve | None,
        generator: Generator | None = None,
        progress: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embed = embed
        self.retrieve = retrieve
        self.generator = generator
        self.progress = progress
        qa = settings.qa
        self.threshold = settings.answer.support_threshold
        self.templates = Templates(self.threshold, qa.max_answer_chars, qa.max_template_pairs_per_chunk)

    async def generate(
        self, *, self_instruct: bool | None = None, kinds: Sequence[str] | None = None, rebuild: bool = False
    ) -> QAReport:
        """Make pairs for sources without current ones; ``rebuild`` retires every generated pair
        and makes all anew (e.g. to add self-instruct pairs to sources that have template pairs)."""
        qa = self.settings.qa
        use_llm = qa.self_instruct if self_instruct is None else self_instruct
        if use_llm and self.generator is None:
            from lorebase.errors import InvalidInput

            raise InvalidInput("self-instruct needs a generator")
        kinds = list(kinds or qa.kinds)
        report = QAReport()

        with self.store.session() as s:
            sources = {sid: (kind, h) for sid, kind, h in s.execute(select(Source.id, Source.kind, Source.content_hash))}
            active = s.execute(
                select(QAPair.id, QAPair.source_ids, QAPair.source_hash, QAPair.question, QAPair.method)
                .where(QAPair.retired_at.is_(None), QAPair.method != "feedback")
            ).all()
            # Sources that were examined and gave no pair, with the hash they had then.
            barren = {c.name[len(NO_PAIRS):]: c.value for c in s.scalars(
                select(SyncCursor).where(SyncCursor.name.startswith(NO_PAIRS)))}
        retire: list[int] = []
        current: set[str] = set()
        kept_questions: list[str] = []
        gone: set[str] = set()
        for pid, sids, shash, question, method in active:
            sids = list(sids or [])
            missing = [sid for sid in sids if sid not in sources]
            if missing or (rebuild and bool(sids) and sources[sids[0]][0] in kinds):
                retire.append(pid)
                gone.update(missing)
            elif sids and sources[sids[0]][1] != shash:
                retire.append(pid)
            else:
                current.update(sids[:1])
                if method != "abstention":
                    kept_questions.append(question)
        report.retired, report.gone = len(retire), len(gone)
        todo = sorted(sid for sid, (kind, h) in sources.items()
                      if kind in kinds and sid not in current and (rebuild or barren.get(sid) != h))
        report.sources = sum(1 for kind, _ in sources.values() if kind in kinds)
        report.unchanged = report.sources - len(todo)
        report.regenerated = len(todo)

        drafts, rejected = await self._make(todo, use_llm, report)
        report.rejected = len(rejected)
        report.rejected_reasons.update(f"{r.category}: {r.reason}" for r in rejected)

        dropped = near_duplicates([*kept_questions, *(d.question for d in drafts)], self.embed,
                                  qa.dedupe_threshold, fixed=len(kept_questions))
        drop = {i - len(kept_questions) for i, _ in dropped}
        report.duplicates = len(drop)
        drafts = [d for i, d in enumerate(drafts) if i not in drop]
        if self.retrieve is not None and qa.abstention_share > 0:
            drafts += abstention_pairs(drafts, self.retrieve, share=qa.abstention_share, contexts=qa.abstention_contexts,
                                       threshold=self.threshold, salt=qa.split_salt)

        now = utcnow()
        made = {d.group for d in drafts}
        with self.store.session() as s:
            if retire:
                s.execute(update(QAPair).where(QAPair.id.in_(retire)).values(retired_at=now))
            stale = [sid for sid in barren if sid not in sources or sid in made]
            if stale:
                s.execute(delete(SyncCursor).where(SyncCursor.name.in_([NO_PAIRS + sid for sid in stale])))
            for sid in todo:
                if sid not in made:
                    s.merge(SyncCursor(name=NO_PAIRS + sid, value=sources[sid][1], updated_at=now))
            for d in drafts:
                split = split_for(d.group, salt=qa.split_salt, train_share=qa.train_share,
                                  validation_share=qa.validation_share)
                s.add(QAPair(
                    question=d.question, answer=d.answer, chunk_ids=d.chunk_ids, source_ids=d.source_ids, kind=d.kind,
                    category=d.category, method=d.method, validated=bool(d.validation.get("supported")),
                    validation=d.validation, split=split, provenance=d.provenance, question_hash=d.question_hash,
                    source_hash=d.source_hash, created_at=now,
                ))
                report.by_method[d.method] += 1
                report.by_split[split] += 1
        report.added = len(drafts)
        return report

    async def _make(self, source_ids: list[str], use_llm: bool, report: QAReport) -> tuple[list[QADraft], list[Rejected]]:
        drafts: list[QADraft] = []
        rejected: list[Rejected] = []
        writer = None
        if use_llm:
            assert self.generator is not None
            qa = self.settings.qa
            writer = SelfInstruct(self.generator, questions_per_chunk=qa.self_instruct_questions,
                                  max_new_tokens=qa.self_instruct_max_new_tokens, threshold=self.threshold,
                                  max_answer_chars=qa.max_answer_chars)
        budget = self.settings.qa.self_instruct_max_chunks
        bar = _bar(len(source_ids), self.progress)
        try:
            for sid in source_ids:
                with self.store.session() as s:
                    src = s.get(Source, sid)
                    if src is None:  # deleted while we ran
                        continue
                    chunks = [c for c in s.scalars(select(Chunk).where(Chunk.source_id == sid).order_by(Chunk.ordinal))
                              if c.joins is None]  # a joined window repeats its chunks' pairs
                    s.expunge_all()
                for chunk in chunks:
                    made = self.templates.pairs(src, chunk)
                    drafts += made.pairs
                    rejected += made.rejected
                    if writer is not None and report.self_instruct_chunks < budget:
                        report.self_instruct_chunks += 1
                        got = await writer.pairs_for(src, chunk)
                        report.self_instruct_questions += got.questions
                        drafts += got.pairs
                        rejected += got.rejected
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return drafts, rejected


def _bar(total: int, on: bool) -> Any:
    if not on:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="qa sources", unit="src")
