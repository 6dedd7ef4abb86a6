"""`lorebase eval`: the eval set through the live answer pipeline, scored, recorded and reported.

Each question is retrieved for (hit@k and MRR, with lorebase.eval.retrieval's scoring) and answered
by the ConversationService the API and the UI use (handed in: eval builds no services). The answers
are then scored by RAGAS (the judge's four metrics and the metrics without an LLM), lecture summaries by ROUGE against
the reference summaries, and speed from the answers' timings. The run is an EvalRun row plus a
JSON and an HTML report in ``settings.reports_dir``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lorebase.errors import InvalidInput, LorebaseError, UnknownModel
from lorebase.eval import catalog
from lorebase.eval.retrieval import Metrics, Question, load_questions, resolve_gold, score_ranking
from lorebase.eval.runs import (
    earlier_runs,
    file_sha256,
    finish_run,
    get_run,
    git_commit,
    report_paths,
    start_run,
    write_json,
    write_text,
)
from lorebase.eval.stats import mean, percentile, present, question_score
from lorebase.store.models import AdapterVersion, Chunk, Source, utcnow

if TYPE_CHECKING:
    from lorebase.eval.judge import Judge
    from lorebase.eval.ragas_scoring import Sample
    from lorebase.generation.conversation import ConversationService
    from lorebase.index.sync import IndexSyncer

MAX_REFERENCE_CONTEXTS = 20  # gold chunks compared per question (a whole-file gold can have many)
Progress = Callable[[str], None]


@dataclass
class EvalOptions:
    eval_set: Path
    judge_url: str | None = None
    judge_model: str | None = None
    judge: bool = True  # False: only the metrics that need no LLM
    summaries: Path | None = None  # reference summaries; None skips the summary evaluation
    limit: int | None = None  # the first N questions only
    adapter: str | None = None  # answer with this LoRA adapter instead of the base model


class EvalRunner:
    def __init__(self, conversation: ConversationService, indexer: IndexSyncer,
                 gates: Callable[[], dict[str, Any]] | None = None) -> None:
        self.conv = conversation
        self.indexer = indexer
        self.gates = gates  # the latest decision of each model gate, for the report (Services.gate_status)
        self.settings = conversation.settings
        self.store = conversation.store
        self.search = conversation.search

    async def run(self, opts: EvalOptions, progress: Progress | None = None) -> dict[str, Any]:
        """Run, score and report; returns the report (also written as JSON and HTML)."""
        say = progress or (lambda _msg: None)
        generator = self.conv.engine().generator  # EngineUnavailable until the generator answers
        path = Path(opts.eval_set)
        questions, problems = load_questions(path)
        if opts.limit is not None:
            if opts.limit < 1:
                raise InvalidInput(f"limit must be at least 1, got {opts.limit}")
            questions = questions[: opts.limit]
        if not questions:
            raise InvalidInput(f"{path} holds no usable question" + (f": {problems[0]['error']}" if problems else ""))
        adapter = await self._adapter(opts.adapter)

        judge: Judge | None = None
        try:
            if opts.judge:
                from lorebase.eval.judge import open_judge

                judge = await open_judge(self.settings, generator, url=opts.judge_url, model=opts.judge_model)
            identity: dict[str, Any] = {
                "eval_set": str(path),
                "eval_set_hash": file_sha256(path),
                "model": generator.base_model,
                "adapter": adapter["name"] if adapter else None,
                "embedder": self.search.embedder.model_name,
                "index_size": self.indexer.dense.count,
                "git_commit": await asyncio.to_thread(git_commit),
                "judge": judge.name if judge else None,
            }
            run_id = start_run(self.store, **identity)
            say(f"eval run {run_id}: {len(questions)} question{'' if len(questions) == 1 else 's'} from {path}")
            try:
                report = await self._run(run_id, identity, questions, problems, adapter, judge, opts, say)
            except BaseException as e:  # interrupted or broken: the row says so rather than "running" forever
                finish_run(self.store, run_id, status="failed", metrics={"error": f"{type(e).__name__}: {e}"[:500]}, report_path=None)
                raise
        finally:
            if judge is not None:
                await judge.aclose()
        return report

    async def _adapter(self, name: str | None) -> dict[str, Any] | None:
        try:  # none named: the promoted adapter, as the API serves it
            name = await self.conv.resolve_model(name)
        except UnknownModel:
            names = await self.conv.engine().generator.models()
            raise UnknownModel(f"the adapter {name!r} is not loaded; loaded: {', '.join(names)}") from None
        if name is None:
            return None
        with self.store.session() as s:
            row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == name))
            if row is None:
                return {"name": name}
            return {"name": name, "id": row.id, "status": row.status, "data_hash": row.data_hash, "base_model": row.base_model}

    async def _run(self, run_id: int, identity: dict[str, Any], questions: list[Question], problems: list[dict[str, str]],
                   adapter: dict[str, Any] | None, judge: Judge | None, opts: EvalOptions, say: Progress) -> dict[str, Any]:
        from lorebase.eval.ragas_scoring import RagasScoring

        started = time.perf_counter()
        ev = self.settings.eval
        # the served name, never None: None would mean the served default, which may be an adapter
        model = adapter["name"] if adapter else self.conv.engine().generator.base_model
        records: list[dict[str, Any]] = []
        samples: list[Sample] = []
        for i, q in enumerate(questions, start=1):
            rec, sample = await self._answer(q, model)
            records.append(rec)
            if sample is not None:
                samples.append(sample)
            say(f"answered {i}/{len(questions)}: {q.id} ({rec['latency_s'] or 0:.1f} s)")
            if rec.get("error"):
                problems.append({"question": q.id, "where": "answer", "error": rec["error"]})

        summaries = await self._summaries(opts.summaries, model, problems, say)

        scoring = RagasScoring(judge.llm if judge else None, self.search.embedder,
                               timeout_s=ev.judge_timeout_s, concurrency=ev.judge_concurrency)
        say(f"scoring {len(samples)} answers" + (f" with the judge {judge.name}" if judge else " (no judge)"))
        scored = await scoring.score_all(samples, say)
        for rec in records:
            got = scored.get(rec["id"])
            if got is not None:
                rec["scores"].update(got.scores)
                rec["failures"].update(got.failures)
                rec["skipped"].update(got.skipped)

        report = {
            "object": "eval.run",
            "id": run_id,
            "status": "ok",
            "started_at": get_run(self.store, run_id)["started_at"],
            "finished_at": utcnow().isoformat(),
            "duration_s": round(time.perf_counter() - started, 2),
            **identity,
            "adapter": adapter,
            "judge": judge.describe() if judge else None,
            "gates": await asyncio.to_thread(self.gates) if self.gates is not None else None,
            **self._aggregate(records, problems, summaries),
        }
        json_path, html_path = report_paths(self.settings, run_id)
        write_json(json_path, report)
        from lorebase.eval.report_html import render

        earlier = earlier_runs(self.store, identity["eval_set_hash"], run_id)
        write_text(html_path, render(report, earlier))
        run_metrics = {**report["metrics"], "judge_failures": report["judge_failures"]["total"], "questions": len(records)}
        finish_run(self.store, run_id, status="ok", metrics=run_metrics, report_path=str(html_path))
        report["status"] = "ok"
        say(f"report: {html_path}")
        return report

    # --- one question ---------------------------------------------------------------------------

    async def _answer(self, q: Question, model: str) -> tuple[dict[str, Any], Sample | None]:
        from lorebase.eval.ragas_scoring import Sample
        from lorebase.generation.conversation import ConversationRequest

        k = self.settings.eval.k
        gold_sets: list[set[int]] = []
        gold_kind: str | None = None
        unmatched: list[dict[str, Any]] = []
        for g in q.gold:
            ids, kind = resolve_gold(self.store, g)
            if ids:
                gold_sets.append(ids)
                gold_kind = gold_kind or kind
            else:
                unmatched.append(g)
        rec: dict[str, Any] = {
            "id": q.id, "kind": q.kind or gold_kind or "unknown", "category": q.category, "question": q.question,
            "reference": q.answer, "answer": "", "sources": [], "check": None, "latency_s": None,
            "prompt_tokens": 0, "completion_tokens": 0, "scores": {}, "failures": {}, "skipped": {},
            "unmatched_gold": unmatched, "error": None,
        }
        filters = q.filters or None
        try:
            ranked = await asyncio.to_thread(self.search.retrieve, q.question, k, filters)
            if gold_sets:
                hit1, hit5, recall, rr = score_ranking([h.chunk_id for h in ranked], gold_sets, k)
                rec["scores"].update({"hit@1": hit1, "hit@5": hit5, f"recall@{k}": round(recall, 4), "mrr": round(rr, 4)})
            else:
                rec["skipped"]["retrieval"] = "no gold source found in the store"
            t0 = time.perf_counter()
            a = await self.conv.complete(ConversationRequest.ask(q.question, filters=filters, model=model))
            rec["latency_s"] = round(time.perf_counter() - t0, 4)
            hits = await asyncio.to_thread(self.search.retrieve, q.question, None, filters)
        except LorebaseError as e:
            rec["error"] = f"{type(e).__name__}: {e}"
            return rec, None
        rec.update(
            answer=a.text, check=a.verdict.model_dump(mode="json"), finish_reason=a.finish_reason,
            prompt_tokens=a.usage.prompt_tokens, completion_tokens=a.usage.completion_tokens,
            sources=[{"id": c.id, "label": c.label, "uri": c.uri, "source_id": c.source_id, "kind": c.kind} for c in a.sources],
        )
        # The texts the model saw: citation Si is the i-th hit of the same (deterministic) retrieval.
        contexts: list[str] = []
        for c in a.sources:
            i = int(c.id[1:]) - 1 if c.id[1:].isdigit() else -1
            hit = hits[i] if 0 <= i < len(hits) else None
            contexts.append(hit.chunk.text if hit is not None and hit.source.id == c.source_id else c.snippet)
        ref_texts, ref_ids = self._gold_texts(set().union(*gold_sets) if gold_sets else set())
        sample = Sample(
            id=q.id, question=q.question, answer=a.text, reference=q.answer, contexts=contexts,
            context_ids=[c.source_id for c in a.sources], reference_contexts=ref_texts, reference_ids=ref_ids,
        )
        return rec, sample

    def _gold_texts(self, chunk_ids: set[int]) -> tuple[list[str], list[str]]:
        if not chunk_ids:
            return [], []
        with self.store.session() as s:
            rows = s.execute(select(Chunk.id, Chunk.text, Chunk.source_id).where(Chunk.id.in_(sorted(chunk_ids))).order_by(Chunk.id)).all()
        texts = [r[1] for r in rows][:MAX_REFERENCE_CONTEXTS]
        return texts, sorted({r[2] for r in rows})

    # --- summaries ----------------------------------------------------------------------------

    async def _summaries(self, path: Path | None, model: str, problems: list[dict[str, str]],
                         say: Progress) -> dict[str, Any]:
        if path is None:
            return {"file": None, "items": [], "skipped": "no reference summaries given"}
        if not Path(path).is_file():
            return {"file": str(path), "items": [], "skipped": f"{path} does not exist"}
        from ragas.metrics.collections import RougeScore

        from lorebase.generation.conversation import ConversationRequest

        rouge1, rouge_l = RougeScore(rouge_type="rouge1"), RougeScore(rouge_type="rougeL")
        items: list[dict[str, Any]] = []
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                obj = json.loads(line)
                lecture, reference = obj["lecture"], obj["summary"]
                if not isinstance(lecture, str) or not isinstance(reference, str):
                    raise ValueError("'lecture' and 'summary' must be strings")
            except (ValueError, KeyError, TypeError) as e:
                problems.append({"question": f"summary line {n}", "where": str(path), "error": f"not a reference summary: {e}"})
                continue
            item: dict[str, Any] = {"lecture": lecture, "title": obj.get("title") or lecture, "reference": reference,
                                    "summary": "", "summary_rouge1": None, "summary_rougeL": None, "latency_s": None, "error": None}
            try:
                t0 = time.perf_counter()
                s = await self.conv.complete(ConversationRequest.ask(f"Summarise {lecture}", mode="summary",
                                                                     lecture=self._lecture(lecture), model=model))
                item["latency_s"] = round(time.perf_counter() - t0, 4)
                item.update(summary=s.text, input_chars=s.input_chars, output_chars=len(s.text))
                item["summary_rouge1"] = round(float((await rouge1.ascore(reference=reference, response=s.text)).value), 4)
                item["summary_rougeL"] = round(float((await rouge_l.ascore(reference=reference, response=s.text)).value), 4)
            except LorebaseError as e:
                item["error"] = f"{type(e).__name__}: {e}"
                problems.append({"question": lecture, "where": "summary", "error": item["error"]})
            items.append(item)
            say(f"summarised {lecture}")
        return {"file": str(path), "items": items}

    def _lecture(self, name: str) -> str:
        """Eval sets name lectures as ingested ("intro-rag/<stem>", the key without "transcript:");
        the summary service also takes a title or source id, so fall back to the name itself."""
        with self.store.session() as s:
            sid = s.scalar(select(Source.id).where(Source.kind == "transcript", Source.key == f"transcript:{name}"))
        return sid or name

    # --- the report ---------------------------------------------------------------------------

    def _aggregate(self, records: list[dict[str, Any]], problems: list[dict[str, str]],
                   summaries: dict[str, Any]) -> dict[str, Any]:
        ev = self.settings.eval
        k = ev.k
        names = catalog.quality_names(k)
        metrics: dict[str, float | None] = {n: mean(r["scores"].get(n) for r in records) for n in names}
        counts = {n: len(present(r["scores"].get(n) for r in records)) for n in names}
        for n in catalog.SUMMARY:
            metrics[n] = mean(i[n] for i in summaries["items"])
            counts[n] = len(present(i[n] for i in summaries["items"]))

        answered = [r for r in records if r["latency_s"] is not None]
        latencies = [r["latency_s"] for r in answered]
        generating = [r for r in answered if r["completion_tokens"] > 0]
        gen_time = sum(r["latency_s"] for r in generating)
        speed = {
            "latency_p50_s": _round(percentile(latencies, 50)),
            "latency_p95_s": _round(percentile(latencies, 95)),
            "tokens_per_s": _round(sum(r["completion_tokens"] for r in generating) / gen_time) if gen_time > 0 else None,
            "answers": len(answered),
            "completion_tokens": sum(r["completion_tokens"] for r in answered),
        }
        for n in catalog.SPEED:
            metrics[n] = speed[n]
            counts[n] = len(answered)

        retrieval_all = Metrics()
        retrieval_kind: dict[str, Metrics] = {}
        for r in records:
            if "hit@1" in r["scores"]:
                row = (r["scores"]["hit@1"], r["scores"]["hit@5"], r["scores"][f"recall@{k}"], r["scores"]["mrr"])
                retrieval_all.add(*row)
                retrieval_kind.setdefault(r["kind"], Metrics()).add(*row)

        by_kind: dict[str, dict[str, Any]] = {}
        for kind in sorted({r["kind"] for r in records}):
            rows = [r for r in records if r["kind"] == kind]
            by_kind[kind] = {"n": len(rows), **{n: mean(r["scores"].get(n) for r in rows) for n in names}}

        def failures(metric_names: tuple[str, ...]) -> dict[str, Any]:
            found = [(r["id"], m, f) for r in records for m, f in r["failures"].items() if m in metric_names]
            return {
                "total": len(found),
                "by_kind": dict(Counter(f["kind"] for _, _, f in found)),
                "by_metric": dict(Counter(m for _, m, _ in found)),
                "examples": [{"question": q, "metric": m, **f} for q, m, f in found[:10]],
            }

        judge_failures = failures(catalog.JUDGE)
        judge_failures["attempted"] = sum(1 for r in records for m in catalog.JUDGE
                                          if m in r["scores"] and m not in r["skipped"])
        ranked = sorted(((question_score(r["scores"], names), r["id"]) for r in records if not r["error"]),
                        key=lambda t: (t[0] is None, t[0] if t[0] is not None else 0.0))
        return {
            "questions_total": len(records),
            "k": k,
            "metrics": metrics,
            "counts": counts,
            "about": {n: catalog.about(n) for n in metrics},
            "by_kind": by_kind,
            "retrieval": {"overall": retrieval_all.means(k), "by_kind": {kd: m.means(k) for kd, m in sorted(retrieval_kind.items())}},
            "speed": speed,
            "judge_failures": judge_failures,
            "metric_errors": failures(catalog.NO_LLM),
            "summaries": summaries,
            "worst": [qid for score, qid in ranked if score is not None][: ev.worst],
            "questions": records,
            "problems": problems,
        }


def _round(v: float | None, places: int = 4) -> float | None:
    return None if v is None else round(v, places)
