"""The base generator against a LoRA adapter tuned on a corpus, side by side on held-out sources.

Ingests a corpus (default: the demo one, datasets/transcripts/intro-rag,
datasets/github/lorebase-issues.json and this repository at HEAD; or --corpus PATH...) into a data
home, generates the QA pairs, trains an adapter with the configured settings, runs the evaluation
gate (both models answer the same test-split examples, from sources never trained on, scored with
the answer benchmark's metrics, with a paired-bootstrap 95% interval of each difference) and writes
a markdown table with the machine, the date, the machine's load and the training time.
--no-ingest reuses a home that already holds the corpus and its pairs.

    .venv/bin/python bench/bench_finetune.py --out bench/finetune.md
    .venv/bin/python bench/bench_finetune.py --generator small --home /tmp/flask-home --no-ingest --max-examples 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from lorebase.finetune.adapter_training import train_adapter  # noqa: E402
from lorebase.finetune.export import stats  # noqa: E402
from lorebase.finetune.gate_run import GateReport, record, run_gate  # noqa: E402
from lorebase.finetune.qa_generation import QAGenerator  # noqa: E402
from lorebase.finetune.retrieval import retriever  # noqa: E402
from lorebase.offline_models import generator_path, prepare  # noqa: E402
from lorebase.services import Services  # noqa: E402
from lorebase.settings import Settings, load_settings  # noqa: E402

CORPUS = [REPO / "datasets" / "transcripts" / "intro-rag", REPO / "datasets" / "github" / "lorebase-issues.json", REPO]


def machine() -> str:
    cpu = cpu_name("?")
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("—" if v is None else str(v))


def table(report: GateReport) -> list[str]:
    s = report.summary()
    cur, cand, ci = s["metrics"]["current"], s["metrics"]["candidate"], s.get("ci95") or {}
    lines = ["| metric | base | tuned adapter | change | 95% interval of the change | examples |", "|---|---|---|---|---|---|"]
    for name in cand:
        a, b = cur.get(name), cand.get(name)
        delta = f"{b - a:+.3f}" if isinstance(a, float) and isinstance(b, float) else "—"
        iv = ci.get(name)
        band = f"{iv[0]:+.3f} … {iv[1]:+.3f}" if iv else "—"
        lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {delta} | {band} | {s['counts'].get(name, '—')} |")
    return lines


def samples(report: GateReport, n: int) -> list[str]:
    out = ["| question category | expected | base | tuned adapter |", "|---|---|---|---|"]
    full = report.full()["per_example"]
    shown = 0
    for cur, cand in zip(full["current"], full["candidate"], strict=True):
        if shown >= n:
            break
        exp = "abstain" if cur["kind"] == "unanswerable" else "answer"

        def cell(t: str) -> str:
            t = " ".join(t.split())
            return (t[:160] + "…" if len(t) > 160 else t).replace("|", "\\|")

        out.append(f"| {cur['category']} | {exp} | {cell(cur['answer'])} | {cell(cand['answer'])} |")
        shown += 1
    return out


async def main_async(args: argparse.Namespace) -> str:
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="lorebase-bench-ft-"))
    overrides: dict[str, Any] = {"home": home, "generation": {"backend": "transformers"}}
    if args.generator:
        overrides["models"] = {"generator": args.generator}
    ft: dict[str, Any] = {}
    if args.gate_examples:
        ft["gate_max_examples"] = args.gate_examples
    if ft:
        overrides["finetune"] = ft
    settings: Settings = load_settings(**overrides)
    settings.ensure_home()
    if not args.generator:
        prepare(settings, log=lambda m: print(m, flush=True))
    corpus = [Path(c).resolve() for c in args.corpus] if args.corpus else CORPUS
    model_dir = generator_path(settings)
    started = datetime.now(UTC)
    load_before = load()
    print(f"data home {home}; generator {model_dir}", flush=True)

    t0 = time.monotonic()
    svc = Services.build(settings)
    try:
        if not args.no_ingest:
            rep = svc.ingest.ingest([str(p) for p in corpus])
            print(f"ingested in {time.monotonic() - t0:.0f} s: {rep.added} sources, {rep.chunks_added} chunks", flush=True)
        ingest_s = time.monotonic() - t0
        t1 = time.monotonic()
        await QAGenerator(settings, svc.store, embed=svc.search.embedder.embed, retrieve=retriever(svc.search),
                               progress=True).generate()
        qa_s = time.monotonic() - t1
        counts = stats(svc.store)
        print(f"qa pairs in {qa_s:.0f} s: {counts['by_split']}", flush=True)

        retrieve = retriever(svc.search)
        load_train = load()
        c0 = cpu_seconds()
        outcome = train_adapter(settings, svc.store, retrieve, name="bench-" + started.strftime("%Y%m%d-%H%M%S"),
                                max_examples=args.max_examples, max_steps=args.max_steps, progress=True,
                                embed=svc.search.embedder.embed)
        train_cpu = cpu_seconds() - c0
        load_after_train = load()
        print(f"trained {outcome.adapter.name}: {outcome.examples} examples, {outcome.steps} steps, {outcome.seconds:.0f} s", flush=True)

        t2 = time.monotonic()
        report = await run_gate(settings, svc.store, retrieve, svc.search.embedder.embed, outcome.adapter.name,
                                progress=lambda m: print(m, flush=True))
        gate_s = time.monotonic() - t2
        record(svc.store, report, promote=False)
    finally:
        svc.store.close()

    f = settings.finetune
    layers = f"last {f.lora_layers} layers" if f.lora_layers else "all layers"
    lines = [
        f"# Fine-tuning: base `{model_dir.name}` against the tuned LoRA adapter",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Load average (1/5/15 min): {load_before} at start, {load_train} when training began, {load_after_train} when it ended "
        "(the CPU was shared with other work; times are wall-clock)",
        f"- Generator: `{model_dir.name}`; embedder: `{settings.models.embedder}`",
        f"- Corpus: {', '.join(str(p) for p in corpus)}; "
        f"ingest {ingest_s:.0f} s, QA generation {qa_s:.0f} s",
        f"- QA pairs: {counts['active']} ({', '.join(f'{k} {v}' for k, v in counts['by_split'].items())}); "
        f"by method: {', '.join(f'{k} {v}' for k, v in counts['by_method'].items())}",
        f"- Training: {outcome.examples} RAG-style examples ({outcome.withheld} with the gold withheld; skipped {outcome.skipped}; "
        f"target sentences dropped {outcome.targets.get('sentences_dropped')}, fixed {outcome.targets.get('fixed')}), {outcome.steps} optimizer steps, "
        f"**{outcome.seconds / 60:.1f} min** wall ({train_cpu / 60:.1f} CPU-min), final loss {fmt(outcome.final_loss)}",
        f"- LoRA r={f.lora_r}, alpha={f.lora_alpha}, {', '.join(f.target_modules)} on {layers}; max_length {f.max_length}, "
        f"k={f.context_k} sources, batch {f.batch_size} x {f.grad_accum} accumulation, {f.epochs:g} epoch(s), lr {f.learning_rate:g}, "
        f"{outcome.adapter.metrics.get('train', {}).get('precision', '?')}",
        f"- Gate: {report.examples} held-out examples (test split, grouped by source) answered by both models in {gate_s / 60:.1f} min; "
        f"LLM-judged faithfulness: {report.faithfulness_method}",
        "",
        *table(report),
        "",
        f"Gate decision (main metric {report.decision.main_metric}, minimum gain {f.gate_min_gain:g}, tolerance {f.gate_tolerance:g} or the noise): "
        + ("**pass**" if report.decision.passed else "**fail**") + " — " + "; ".join(report.decision.reasons),
        "",
        "## First answers side by side",
        "",
        *samples(report, args.samples),
        "",
    ]
    if not args.home and not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the markdown here (also printed)")
    p.add_argument("--home", help="data home to use (kept); default: a temporary one, removed after")
    p.add_argument("--keep", action="store_true", help="keep the temporary data home")
    p.add_argument("--generator", help="a profile (tiny, small, base) or a Hugging Face model folder (default: models.generator, prepared into the home)")
    p.add_argument("--corpus", nargs="*", help="folders, repositories or exports to ingest (default: the demo corpus)")
    p.add_argument("--no-ingest", action="store_true", help="the home holds the corpus already: only make pairs, train and gate")
    p.add_argument("--max-examples", type=int, help="training examples at most (default: finetune.max_examples)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop training after N optimizer steps")
    p.add_argument("--gate-examples", type=int, help="test examples the gate answers (default: finetune.gate_max_examples)")
    p.add_argument("--samples", type=int, default=6, help="answers shown side by side")
    args = p.parse_args()
    text = asyncio.run(main_async(args))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
