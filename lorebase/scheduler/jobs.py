"""The steps the scheduler runs, one function each: they take the JobContext (settings and the
process's services) and return the counts their JobRun records. The order, the locks and the
retries are lorebase.scheduler.pipeline's; the work itself is done by the services every other
entry point uses (ingest, QA generation, training, the gate, the registry, the evaluation runner).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select

from lorebase.errors import InvalidInput, LorebaseError
from lorebase.scheduler.changes import Change, probe, save_listing
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import Store
from lorebase.store.models import AdapterVersion, JobRun, QAPair

if TYPE_CHECKING:
    from lorebase.generation.backend import Generator
    from lorebase.generation.conversation import ConversationService
    from lorebase.ingest.records import Reader
    from lorebase.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")
AUTO_PREFIX = "auto-"  # adapters the scheduler trains: auto-<UTC time>


class StepError(LorebaseError):
    """A step could not do its work this time (a reader died, the index could not be saved); retried."""

    code = "job_step_failed"


@dataclass
class JobContext:
    """What a step may use: the settings, the store, and the process's services, built on first
    need (a sync that finds nothing changed never loads the embedder)."""

    settings: Settings
    store: Store
    get_services: Callable[[], Services]
    # Inside `lorebase serve`: the API's event loop, which owns services.generator.
    loop: asyncio.AbstractEventLoop | None = None
    progress: bool = False

    @classmethod
    def of(cls, services: Services, *, loop: asyncio.AbstractEventLoop | None = None, progress: bool = False) -> JobContext:
        return cls(services.settings, services.store, lambda: services, loop=loop, progress=progress)

    @property
    def services(self) -> Services:
        return self.get_services()

    def served_generator(self) -> Generator | None:
        """The process's running generator, callable from this thread; None when none runs."""
        gen = self.services.generator
        if gen is None or self.loop is None:
            return gen
        from lorebase.scheduler.served_generator import ServedGenerator

        return ServedGenerator(gen, self.loop)

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to its end in this (worker) thread, on an event loop of its own."""
        return asyncio.run(coro)


# --- 1. sync and 2. ingest, per tracked source -------------------------------------------------------


def sync_source(ctx: JobContext, source: TrackedSourceSettings) -> Change:
    return probe(source, ctx.settings, ctx.store)


def _reader(source: TrackedSourceSettings, settings: Settings) -> Reader:
    if source.branch is not None:
        from lorebase.ingest.git.repo import GitRepoReader

        return GitRepoReader(source.spec, settings, branch=source.branch)
    from lorebase.ingest.resolve import reader_for

    return reader_for(source.spec, settings)


def ingest_source(ctx: JobContext, source: TrackedSourceSettings, change: Change) -> dict[str, Any]:
    """Ingest one changed source (the readers read only what changed since their cursors)."""
    reader = _reader(source, ctx.settings)
    report = ctx.services.ingest.run([reader], inputs=[source.spec])
    counts: dict[str, Any] = {
        "source": source.name, "ingest_run": report.run_id, "status": report.status,
        **{k: getattr(report, k) for k in ("added", "updated", "unchanged", "removed", "skipped", "failed",
                                           "chunks_added", "chunks_removed")},
        "index": report.index, "errors": report.errors[:10],
    }  # fmt: skip
    # The reader itself died (a fetch failed mid-read) or the index could not be saved: worth a
    # retry. A file that fails to parse is the batch going on, and is in the counts.
    fatal = [e for e in report.errors if e.get("source") in (reader.label, "index")]
    if fatal:
        raise StepError(f"{fatal[0]['source']}: {fatal[0]['reason']}")
    if report.failed == 0:
        save_listing(ctx.store, change)  # a files source with failures is looked at again next time
    return counts


def changed_anything(counts: dict[str, Any]) -> bool:
    return bool(counts.get("added") or counts.get("updated") or counts.get("removed"))


# --- 3. QA pairs -------------------------------------------------------------------------------------


def generate_qa(ctx: JobContext) -> dict[str, Any]:
    """Pairs for new and changed sources (QAGenerator is incremental: current pairs are kept)."""
    from lorebase.finetune.qa_generation import QAGenerator
    from lorebase.finetune.retrieval import retriever

    settings, svc = ctx.settings, ctx.services
    use_llm = settings.qa.self_instruct

    async def go() -> Any:
        gen = own = None
        if use_llm:  # the strongest generator prepared writes the pairs (finetune.pair_writer)
            from lorebase.finetune.pair_writer import open_pair_writer

            gen, opened = await open_pair_writer(settings, ctx.served_generator())
            own = gen if opened else None
        try:
            qa = QAGenerator(settings, svc.store, embed=svc.search.embedder.embed, retrieve=retriever(svc.search),
                             generator=gen, progress=ctx.progress)
            return await qa.generate(self_instruct=use_llm)
        finally:
            if own is not None:
                await own.aclose()

    r = ctx.run_async(go())
    return {"added": r.added, "regenerated": r.regenerated, "unchanged": r.unchanged, "retired": r.retired, "gone": r.gone,
            "duplicates": r.duplicates, "rejected": r.rejected, "by_split": dict(r.by_split), "by_method": dict(r.by_method)}


# --- 4. is a retraining due? -------------------------------------------------------------------------


@dataclass
class RetrainCheck:
    new_pairs: int  # validated, active pairs made since the last training (feedback ones included)
    feedback_pairs: int
    threshold: int
    since: datetime | None

    @property
    def due(self) -> bool:
        return self.new_pairs >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {"new_pairs": self.new_pairs, "feedback_pairs": self.feedback_pairs, "threshold": self.threshold,
                "since": self.since.isoformat() if self.since else None, "due": self.due}


def last_training(store: Store) -> datetime | None:
    """When the newest training began: a scheduler retrain's start, or an adapter's registration
    (`lorebase train` by hand), whichever is later."""
    with store.session() as s:
        ran = s.scalar(select(func.max(JobRun.started_at)).where(JobRun.job == "retrain", JobRun.status == "ok"))
        made = s.scalar(select(func.max(AdapterVersion.created_at)))
    found = [t for t in (ran, made) if t is not None]
    return max(found, key=lambda t: t.replace(tzinfo=None)) if found else None


def retrain_check(ctx: JobContext) -> RetrainCheck:
    since = last_training(ctx.store)
    with ctx.store.session() as s:
        q = select(QAPair.method, func.count()).where(QAPair.validated.is_(True), QAPair.retired_at.is_(None))
        if since is not None:
            q = q.where(QAPair.created_at > since)
        by_method = dict(s.execute(q.group_by(QAPair.method)).tuples().all())
    return RetrainCheck(sum(by_method.values()), by_method.get("feedback", 0), ctx.settings.scheduler.retrain_min_pairs, since)


@dataclass
class Pending:
    """The scheduler's newest adapter, left half-way (its process ended) or awaiting its next step."""

    adapter: str
    next_step: str  # evaluate | promote


def pending_adapter(ctx: JobContext) -> Pending | None:
    from lorebase.finetune.registry import Registry

    with ctx.store.session() as s:
        row = s.scalar(select(JobRun).where(JobRun.job == "retrain", JobRun.status == "ok").order_by(JobRun.id.desc()).limit(1))
        name = (row.counts or {}).get("adapter") if row is not None else None
        if row is None or name is None:
            return None
        last = s.scalar(select(JobRun.status).where(JobRun.job.in_(["evaluate", "promote"]), JobRun.id > row.id)
                        .order_by(JobRun.id.desc()).limit(1))
    # A step that failed for good (no test pairs, say) is not taken up again at every sync; one whose
    # process ended ("interrupted") is.
    if last == "failed":
        return None
    try:
        adapter = Registry(ctx.store).get(str(name))
    except LorebaseError:
        return None
    if adapter.status != "candidate":
        return None
    gate = adapter.metrics.get("gate")
    if gate is None:
        return Pending(adapter.name, "evaluate")
    if gate.get("decision", {}).get("passed") and ctx.settings.finetune.auto_promote:
        return Pending(adapter.name, "promote")
    return None


# --- 5. retrain, 6. evaluate, 7. promote --------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(ctx: JobContext) -> int:
    """What a killed training leaves (no chance to clean up): the training folder of a dead process,
    and a finished ``auto-`` adapter folder whose registry row was never written. Called under the
    retrain lock, so no other scheduler training is between its rename and its row."""
    from lorebase.finetune.adapter_training import PARTIAL_PREFIX
    from lorebase.finetune.registry import Registry

    root = ctx.settings.adapters_dir
    if not root.is_dir():
        return 0
    registered = {a.name for a in Registry(ctx.store).list()}
    removed = 0
    for path in root.iterdir():
        if not path.is_dir():
            continue
        if path.name.startswith(PARTIAL_PREFIX):
            pid = path.name.rsplit("-", 1)[-1]
            stale = pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            stale = path.name.startswith(AUTO_PREFIX) and path.name not in registered
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def train(ctx: JobContext) -> dict[str, Any]:
    from lorebase.finetune.adapter_training import train_adapter
    from lorebase.finetune.retrieval import retriever

    cleaned = remove_leftovers(ctx)
    name = f"{AUTO_PREFIX}{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out = train_adapter(ctx.settings, ctx.store, retriever(ctx.services.search), name=name, progress=ctx.progress,
                        embed=ctx.services.search.embedder.embed)
    return {"adapter": out.adapter.name, "examples": out.examples, "withheld_gold": out.withheld, "steps": out.steps,
            "seconds": out.seconds, "final_loss": out.final_loss, "leftovers_removed": cleaned,
            "target_sentences_dropped": sum(out.targets.get("sentences_dropped", {}).values())}


def evaluate(ctx: JobContext, adapter: str) -> dict[str, Any]:
    """The gate: candidate and current model on the test split; the decision goes into the registry."""
    from lorebase.finetune.gate_run import record, run_gate
    from lorebase.finetune.retrieval import retriever

    settings, svc = ctx.settings, ctx.services
    shared = ctx.served_generator() if settings.finetune.eval_backend == "configured" else None

    report = ctx.run_async(run_gate(settings, svc.store, retriever(svc.search), svc.search.embedder.embed, adapter,
                                    generator=shared))
    row = record(svc.store, report, promote=False)
    summary = report.summary()
    return {"adapter": adapter, "current": report.current, "examples": report.examples, "passed": report.decision.passed,
            "reasons": summary["decision"]["reasons"], "candidate": summary["metrics"]["candidate"],
            "baseline": summary["metrics"]["current"], "status": row.status}


def promote(ctx: JobContext, adapter: str) -> dict[str, Any]:
    """Act on the recorded gate decision: promote a candidate that passed (finetune.auto_promote)."""
    from lorebase.finetune.registry import Registry

    registry = Registry(ctx.store)
    found = registry.get(adapter)
    gate = found.metrics.get("gate")
    if gate is None:
        raise InvalidInput(f"{adapter} has not been through the gate: evaluate it first")
    decision = gate.get("decision", {})
    base = {"adapter": adapter, "passed": bool(decision.get("passed"))}
    if not decision.get("passed"):
        return {**base, "promoted": False, "status": found.status, "reason": "; ".join(decision.get("reasons", []))}
    if not ctx.settings.finetune.auto_promote:
        return {**base, "promoted": False, "status": found.status,
                "reason": f"finetune.auto_promote is off: `lorebase adapters promote {adapter}` serves it"}
    done = registry.promote(adapter)
    return {**base, "promoted": True, "status": done.status}


# --- the scheduled evaluation --------------------------------------------------------------------------


def tune_embedder(ctx: JobContext) -> dict[str, Any]:
    """Tune the embedder on the QA pairs, gate it on held-out sources, and when it passes
    re-embed and swap the index (lorebase.finetune.embedder_tuning). Opt-in: scheduler.embedder_cron."""
    from lorebase.finetune.embedder_tuning import tune

    svc = ctx.services
    result = tune(ctx.settings, svc.store, svc.indexer, svc.search.bm25)
    verdict = result.verdict
    return {"embedder": result.name, "promoted": result.promoted, "train_pairs": result.train_pairs,
            "hard_negatives": result.hard_negatives, "held_out_pairs": result.held_out_pairs, "train_s": result.train_seconds,
            "current_mrr": verdict["current"]["mrr"], "candidate_mrr": verdict["candidate"]["mrr"], "reason": verdict["reason"],
            "reindexed": result.reindexed}


def run_eval(ctx: JobContext) -> dict[str, Any]:
    """`lorebase eval` on scheduler.eval_set (else eval.default_set), recorded as an EvalRun."""
    from lorebase.eval.runner import EvalOptions, EvalRunner

    settings, svc = ctx.settings, ctx.services
    eval_set = settings.scheduler.eval_set or settings.eval.default_set
    if not eval_set.is_file():
        raise InvalidInput(f"eval set {eval_set} does not exist (set scheduler.eval_set or eval.default_set)")
    summaries = settings.eval.summaries_set
    if summaries is not None and not summaries.is_file():
        summaries = None
    from lorebase.finetune.registry import Registry

    async def evaluate_served_model(conv: ConversationService) -> dict[str, Any]:
        # What users get by default: the promoted adapter when one is loaded, else the base model.
        gen = conv.engine().generator
        promoted = Registry(svc.store).promoted()
        adapter = promoted.name if promoted is not None and promoted.name in await gen.models() else None
        opts = EvalOptions(eval_set=eval_set, judge=settings.scheduler.eval_judge, summaries=summaries, adapter=adapter)
        return await EvalRunner(conv, svc.indexer, gates=svc.gate_status).run(opts, progress=log.info)

    async def go() -> dict[str, Any]:
        from lorebase.generation.conversation import ConversationService
        from lorebase.readiness import Readiness

        shared = ctx.served_generator()
        if shared is not None:
            conv = ConversationService.serving(settings, svc.store, svc.search, shared,
                                                lambda: svc.conversation.pick_adapter(None))
            return await evaluate_served_model(conv)
        # No generator in this process: start one for this run only, and leave the shared services as they are.
        view = replace(svc, readiness=Readiness(), adapters=None)
        await view.start_generator()
        try:
            return await evaluate_served_model(view.conversation)
        finally:
            if view.adapters is not None:
                await view.adapters.stop()
            gen = view.conversation.detach()
            if gen is not None:
                await gen.aclose()

    report = ctx.run_async(go())
    adapter = report.get("adapter") or {}
    return {"eval_run": report["id"], "eval_set": str(eval_set), "questions": report["questions_total"],
            "adapter": adapter.get("name"), "metrics": report["metrics"], "judge_failures": report["judge_failures"]["total"]}

