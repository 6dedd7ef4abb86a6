"""Generation throughput and time to first token: vLLM against transformers, same model, same prompts.

Run (a few minutes on 2 cores; the vLLM server starts once per dtype):

    .venv/bin/python bench/bench_generation.py --out bench/results/generation.md

Each engine serves the same grounded-question prompts, greedy, through lorebase's own backends
(vLLM over HTTP, as lorebase serves it; transformers in process, one generation at a time), first one
request at a time, then 8 at once; the engines take turns, so a busy machine slows them alike.
Reported: completion tokens per second of wall time, TTFT (time to the first streamed text)
p50/p95, vLLM's ratio to transformers round by round (with --repeat), and whether both engines
gave the same greedy text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

from lorebase.generation.backend import ChatTokenizer, GenerationRequest, Generator
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.generation.vllm_backend import VLLMBackend
from lorebase.generation.vllm_options import VLLMOptions
from lorebase.generation.vllm_server import VLLMServer
from lorebase.settings import GenerationSettings, load_settings

REPO = Path(__file__).resolve().parent.parent

SYSTEM = "Answer the question using only the sources. Cite sources as [S1], [S2]. If the sources do not say, answer that you do not know."
CASES = [
    ("[S1] Gradient descent updates each weight against the gradient of the loss, scaled by the learning rate. "
     "[S2] A learning rate that is too large makes the loss oscillate or diverge.", "What does the learning rate control?"),
    ("[S1] The parser crashed on empty files because it read the first line without checking the length. "
     "[S2] Commit 3f2a adds a guard that returns an empty module for empty input.", "Why did the parser crash, and how was it fixed?"),
    ("[S1] Backpropagation applies the chain rule layer by layer, from the output back to the input. "
     "[S2] It reuses the gradients of later layers, so one backward pass costs about as much as a forward pass.",
     "How does backpropagation compute gradients?"),
    ("[S1] The cache keeps at most 128 entries and evicts the least recently used one. "
     "[S2] Entries expire after ten minutes even when they are used often.", "When is a cache entry removed?"),
    ("[S1] The lecture compares batch, mini-batch and stochastic gradient descent at 12:40. "
     "[S2] Mini-batches trade gradient noise against the cost of each step.", "Why use mini-batches?"),
    ("[S1] The retry decorator waits 1, 2, then 4 seconds between attempts. "
     "[S2] After the third failure it raises the last exception to the caller.", "How many times does the decorator retry?"),
    ("[S1] Dropout sets a random half of the activations to zero during training only. "
     "[S2] At inference the activations are scaled instead, so no unit is dropped.", "Is dropout used at inference time?"),
    ("[S1] The config loader reads lorebase.yaml, then environment variables, which win. "
     "[S2] Unknown keys are rejected with the name of the key.", "Which wins, the YAML file or the environment?"),
]


def messages(i: int) -> list[dict[str, str]]:
    sources, question = CASES[i % len(CASES)]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"}]


@dataclass
class Result:
    engine: str
    concurrency: int
    requests: int
    tokens: int
    wall_s: float
    ttft_s: list[float]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    def ttft(self, q: float) -> float:
        xs = sorted(self.ttft_s)
        return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def one(gen: Generator, i: int, max_tokens: int, texts: dict[int, str], model: str | None) -> tuple[int, float]:
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    tokens = 0
    async for d in gen.stream(GenerationRequest(messages(i), max_tokens=max_tokens, model=model)):
        if d.text and first is None:
            first = time.perf_counter() - start
        parts.append(d.text)
        if d.usage is not None:
            tokens = d.usage.completion_tokens
    texts[i] = "".join(parts)
    return tokens, first if first is not None else time.perf_counter() - start


async def measure(
    engine: str, gen: Generator, concurrency: int, requests: int, max_tokens: int, texts: dict[int, str], model: str | None
) -> Result:
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> tuple[int, float]:
        async with sem:
            return await one(gen, i, max_tokens, texts, model)

    start = time.perf_counter()
    done = await asyncio.gather(*(limited(i) for i in range(requests)))
    wall = time.perf_counter() - start
    return Result(engine, concurrency, requests, sum(t for t, _ in done), wall, [f for _, f in done])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(args: argparse.Namespace) -> str:
    """Start every engine first, then take turns: each engine runs each load right after the others,
    so on a shared machine they see the same background load."""
    import torch

    model, name, queue_size = args.model, args.model.name, 64
    home = args.home or load_settings().home
    adapter = args.adapter.name if args.adapter else None  # requests name it; None means the base model
    adapters = {args.adapter.name: args.adapter.resolve()} if args.adapter else {}
    engines: list[tuple[str, Generator, int | None]] = []  # label, backend, torch threads for in-process runs
    try:
        for dtype in args.vllm_dtype:
            print(f"vLLM {dtype}: starting the server", file=sys.stderr)
            options = VLLMOptions(
                GenerationSettings(vllm_python=args.vllm_python, vllm_dtype=dtype, vllm_kv_cache_gib=2),
                model_dir=model,
                served_name=name,
                max_model_len=args.max_model_len,
                log_file=home / "logs" / "vllm-bench.log",
                cache_dir=home / "vllm-cache",
                port=free_port(),
            )
            t0 = time.perf_counter()
            queue = GenerationQueue(max(args.concurrency), queue_size)
            backend = await VLLMBackend.start(VLLMServer(options, adapters), queue=queue, tokenizer=ChatTokenizer(model))
            engines.append((f"vLLM {dtype}", backend, None))
            print(f"  ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        default_threads = torch.get_num_threads()
        in_process: list[tuple[str, Generator, int | None]] = []
        for tdtype in args.transformers_dtype:
            short = {"float32": "fp32", "bfloat16": "bf16"}[tdtype]
            print(f"transformers {short}: loading {model}", file=sys.stderr)
            tf = await TransformersBackend.open(model, base_model=name, queue=GenerationQueue(max(args.concurrency), queue_size),
                                                dtype=tdtype, adapters=adapters)
            for threads in args.torch_threads or [default_threads]:
                in_process.append((f"transformers {short}, {threads} thread{'s' if threads > 1 else ''}", tf, threads))
        engines[:0] = in_process

        for _, gen, _ in engines:
            await gen.complete(GenerationRequest(messages(0), max_tokens=8, model=adapter))  # warm-up
        runs: dict[tuple[str, int], list[Result]] = {}
        texts: dict[str, dict[int, str]] = {label: {} for label, _, _ in engines}
        for rep in range(args.repeat):
            for c in args.concurrency:
                n = max(c, args.requests) if c == 1 else c * args.rounds
                for label, gen, threads in engines:
                    # vLLM's worker threads spin for about a second after its last step; without a pause
                    # the next engine's first request pays for it.
                    await asyncio.sleep(2.0)
                    torch.set_num_threads(threads or default_threads)
                    r = await measure(label, gen, c, n, args.max_tokens, texts[label], adapter)
                    runs.setdefault((label, c), []).append(r)
                    print(f"  [{rep + 1}] {label} x{c}: {r.tokens} tokens, {r.wall_s:.1f} s, {r.tokens_per_s:.1f} tok/s", file=sys.stderr)
    finally:
        closed: set[int] = set()
        for _, gen, _ in engines:  # the transformers backend appears once per thread count
            if id(gen) not in closed:
                closed.add(id(gen))
                await gen.aclose()

    order = [label for label, _, _ in engines]
    merged = [
        Result(
            label, c, sum(r.requests for r in rs), sum(r.tokens for r in rs), sum(r.wall_s for r in rs), [x for r in rs for x in r.ttft_s]
        )
        for (label, c), rs in sorted(runs.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1]))
    ]
    return report(args, merged, texts, runs)


def report(args: argparse.Namespace, results: list[Result], texts: dict[str, dict[int, str]],
           runs: dict[tuple[str, int], list[Result]]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"## Generation: vLLM vs transformers ({args.model.name}" + (f", every request through LoRA adapter {args.adapter.name}" if args.adapter else "") + ")",
        "",
        f"{now}; {cpu_name()}, {len(os.sched_getaffinity(0))} cores usable, {platform.python_version()}; "
        f"load average at the end {load:.1f}. Greedy, up to {args.max_tokens} new tokens, {len(CASES)} grounded-question prompts "
        "(~100 tokens each). vLLM through lorebase's HTTP backend (LoRA enabled, as served); transformers in process, "
        "one generation at a time (lorebase's backend).",
        "",
        "| engine | concurrent | requests | tokens | wall s | tokens/s | TTFT p50 s | TTFT p95 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.concurrency} | {r.requests} | {r.tokens} | {r.wall_s:.1f} | {r.tokens_per_s:.1f} | "
            f"{r.ttft(0.5):.2f} | {r.ttft(0.95):.2f} |"
        )
    lines.append("")
    best: dict[int, Result] = {}  # the fastest transformers row at each concurrency
    for r in results:
        if r.engine.startswith("transformers") and (r.concurrency not in best or r.tokens_per_s > best[r.concurrency].tokens_per_s):
            best[r.concurrency] = r
    for r in results:
        if r.engine.startswith("vLLM") and r.concurrency in best:
            ratio = r.tokens_per_s / best[r.concurrency].tokens_per_s
            lines.append(f"- {r.engine} at {r.concurrency} concurrent: {ratio:.1f}x the throughput of the best transformers row "
                         f"({best[r.concurrency].engine}).")
            # Round by round: each pair ran back to back, so a load spike on a shared machine hits one round,
            # while the totals above weigh the engine with the longer runs (transformers) by more of it.
            ref = runs.get((best[r.concurrency].engine, r.concurrency), [])
            pairs = zip(runs.get((r.engine, r.concurrency), []), ref, strict=False)
            per_round = [f"{v.tokens_per_s / t.tokens_per_s:.1f}x ({v.tokens_per_s:.1f} vs {t.tokens_per_s:.1f} tok/s)" for v, t in pairs]
            if len(per_round) > 1:
                lines.append(f"  - round by round: {', '.join(per_round)}.")
    ref_label = next(label for label in texts if label.startswith("transformers"))
    for label, got in texts.items():
        if label != ref_label:
            same = sum(1 for i, t in got.items() if texts[ref_label].get(i) == t)
            lines.append(f"- Greedy text identical to {ref_label}: {label} {same}/{len(got)} prompts.")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: models.generator from the settings)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--requests", type=int, default=4, help="requests at concurrency 1")
    ap.add_argument("--rounds", type=int, default=1, help="batches of requests at higher concurrency")
    ap.add_argument("--repeat", type=int, default=1, help="times every engine runs every load, taking turns")
    ap.add_argument("--torch-threads", type=int, nargs="*", default=[], help="transformers runs at these thread counts (default: torch's)")
    ap.add_argument("--vllm-dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    ap.add_argument("--transformers-dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"],
                    help="in-process transformers runs at these precisions (the ratios use the fastest)")
    ap.add_argument("--adapter", type=Path, default=None,
                    help="a LoRA adapter folder: both engines load it and every request asks for it (the promoted-adapter case)")
    ap.add_argument("--vllm-python", type=Path, default=REPO / ".venv-vllm" / "bin" / "python")
    ap.add_argument("--home", type=Path, default=None, help="where logs/vllm-bench.log and the vLLM cache go (default: the data home)")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()
    if args.model is None:  # the generator the settings name (prepared by `lorebase models prepare`)
        from lorebase.offline_models import generator_path

        args.model = generator_path(load_settings())
    return args


if __name__ == "__main__":
    arguments = parse_args()
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.out is not None:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(table, encoding="utf-8")
