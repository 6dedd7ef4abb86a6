"""The CPU budget side by side: vLLM decoding for 8 users while the API process embeds, with and
without lorebase's CPU plan (lorebase/cpu_budget.py).

Run (about 4 minutes on 2 cores; do not run it while others use the machine):

    .venv/bin/python bench/bench_cpu_budget.py --seconds 45 --out bench/results/cpu_budget.md

For each configuration a vLLM server is started with that configuration's thread binding, and this
process takes the API's side of it (its CPU affinity and torch thread count). Then, at the same
time: 8 streams of greedy generation through lorebase's vLLM backend, and a loop doing the API's
own CPU work (a query embedding, as retrieval does, and a batch of 16 sentences, as the grounding
check and ingest do). Each load also runs alone first, so the table shows what sharing costs.

Configurations: `before` is how lorebase ran before the budget (vLLM on every core, the API process
unpinned with torch's default pool, one thread per core); `budget` is the plan `lorebase serve`
applies now (`cpu.*` settings, auto by default). On 2 cores the plan cannot separate them: it only
sizes the API's pools at one thread. On 4+ cores it pins them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

from lorebase.cpu_budget import CpuPlan, cpu_ranges, plan, usable_cpus
from lorebase.generation.backend import ChatTokenizer, GenerationRequest
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.vllm_backend import VLLMBackend
from lorebase.generation.vllm_options import VLLMOptions
from lorebase.generation.vllm_server import VLLMServer
from lorebase.settings import GenerationSettings, load_settings

REPO = Path(__file__).resolve().parent.parent
SENTENCES = [f"The scheduler retries a failed job {i} times with exponential backoff before it gives up." for i in range(16)]
QUESTION = "How does reciprocal rank fusion combine the two result lists?"


@dataclass
class Row:
    config: str
    detail: str
    tok_s: float | None
    batch_ms: list[float]
    query_ms: list[float]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def api_loop(embedder: object, stop: threading.Event, batch_ms: list[float], query_ms: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        embedder.embed_query(QUESTION)  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        embedder.embed(SENTENCES)  # type: ignore[attr-defined]
        t2 = time.perf_counter()
        query_ms.append((t1 - t0) * 1000)
        batch_ms.append((t2 - t1) * 1000)
        time.sleep(0.05)  # an API process is not busy all the time either


async def generate(backend: VLLMBackend, seconds: float, concurrency: int, max_tokens: int) -> float:
    deadline = time.perf_counter() + seconds
    tokens = 0

    async def user(i: int) -> None:
        nonlocal tokens
        while time.perf_counter() < deadline:
            msgs = [{"role": "user", "content": f"Question {i}: explain gradient descent and the learning rate in a few sentences."}]
            done = await backend.complete(GenerationRequest(msgs, max_tokens=max_tokens))
            tokens += done.usage.completion_tokens

    t0 = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(concurrency)))
    return tokens / (time.perf_counter() - t0)


async def run_config(name: str, p: CpuPlan, api_threads: int, args: argparse.Namespace, embedder: object) -> list[Row]:
    import torch

    os.sched_setaffinity(0, p.api_cpus or p.cores)
    torch.set_num_threads(api_threads)
    generation = GenerationSettings(vllm_python=args.vllm_python, vllm_dtype=args.dtype, vllm_kv_cache_gib=2)
    options = VLLMOptions(generation, model_dir=args.model, served_name=args.model.name, max_model_len=2048,
                          log_file=args.home / "logs" / "vllm-cpu-budget.log", cache_dir=args.home / "vllm-cache",
                          port=args.port, cpu_bind=cpu_ranges(p.vllm_cpus))
    detail = (f"vLLM on {cpu_ranges(p.vllm_cpus)}; API " + (f"pinned to {cpu_ranges(p.api_cpus)}" if p.api_cpus else "unpinned")
              + f", {api_threads} torch thread(s)")
    print(f"{name}: {detail}; starting vLLM", file=sys.stderr)
    backend = await VLLMBackend.start(VLLMServer(options), queue=GenerationQueue(args.concurrency, 64), tokenizer=ChatTokenizer(args.model))
    rows = []
    try:
        await backend.complete(GenerationRequest([{"role": "user", "content": "hi"}], max_tokens=4))
        await asyncio.sleep(2)
        tok_alone = await generate(backend, args.seconds, args.concurrency, args.max_tokens)
        await asyncio.sleep(2)  # vLLM's threads spin a moment after their last step
        b, q = [], []
        stop = threading.Event()
        t = threading.Thread(target=api_loop, args=(embedder, stop, b, q))
        t.start()
        await asyncio.sleep(min(args.seconds, 20))
        stop.set()
        t.join()
        rows.append(Row(name, detail + " — API work alone", None, b, q))
        rows.append(Row(name, detail + " — generation alone", tok_alone, [], []))
        b, q = [], []
        stop = threading.Event()
        t = threading.Thread(target=api_loop, args=(embedder, stop, b, q))
        t.start()
        tok_shared = await generate(backend, args.seconds, args.concurrency, args.max_tokens)
        stop.set()
        t.join()
        rows.append(Row(name, detail + " — both at once", tok_shared, b, q))
    finally:
        await backend.aclose()
    return rows


async def main(args: argparse.Namespace) -> str:
    from lorebase.index.embeddings import LorebaseEmbedding

    settings = load_settings()
    cores = usable_cpus()
    budget = plan(settings, cores)
    embedder = LorebaseEmbedding.from_settings(settings)
    embedder.embed(SENTENCES)  # load and warm
    rows: list[Row] = []
    rows += await run_config("before", CpuPlan(cores, cores, None, len(cores)), len(cores), args, embedder)
    rows += await run_config("budget", budget, budget.api_threads, args, embedder)
    os.sched_setaffinity(0, cores)
    load = os.getloadavg()
    lines = [
        f"## CPU budget: vLLM and the API process side by side ({args.model.name}, vLLM {args.dtype})",
        "",
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {cpu_name()}, {len(cores)} cores usable, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}. {args.concurrency} concurrent greedy streams of up to "
        f"{args.max_tokens} tokens for {args.seconds:.0f} s; API work: one query embedding and one batch of 16 sentences, "
        "then 50 ms idle, in a loop.",
        "",
        "| config | setup | vLLM tok/s | batch-embed p50 ms | p95 ms | query-embed p50 ms | p95 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tok = f"{r.tok_s:.1f}" if r.tok_s is not None else ""
        cells = [f"{pct(r.batch_ms, 0.5):.1f}", f"{pct(r.batch_ms, 0.95):.1f}", f"{pct(r.query_ms, 0.5):.1f}",
                 f"{pct(r.query_ms, 0.95):.1f}"] if r.batch_ms else ["", "", "", ""]
        lines.append(f"| {r.config} | {r.detail} | {tok} | " + " | ".join(cells) + " |")
    shared = {r.config: r for r in rows if r.detail.endswith("both at once")}
    alone = {r.config: r for r in rows if r.detail.endswith("generation alone")}
    if len(shared) == 2:
        b, a = shared["before"], shared["budget"]
        lines += ["", f"- Shared, budget vs before: vLLM {a.tok_s / b.tok_s:.2f}x the tokens/s "
                      f"({a.tok_s:.1f} vs {b.tok_s:.1f}); batch embedding p50 {statistics.median(a.batch_ms):.1f} vs "
                      f"{statistics.median(b.batch_ms):.1f} ms."]
        for name in ("before", "budget"):
            lines.append(f"- {name}: sharing keeps {shared[name].tok_s / alone[name].tok_s:.0%} of vLLM's tokens/s alone.")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: models.generator from the settings)")
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--port", type=int, default=None, help="vLLM's port (default: a free one)")
    ap.add_argument("--vllm-python", type=Path, default=REPO / ".venv-vllm" / "bin" / "python")
    ap.add_argument("--home", type=Path, default=None, help="where the vLLM log and cache go (default: the data home)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = load_settings()
    args.home = args.home or settings.home
    if args.port is None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            args.port = int(sock.getsockname()[1])
    if args.model is None:
        from lorebase.offline_models import generator_path

        args.model = generator_path(settings)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.out is not None:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(table, encoding="utf-8")
