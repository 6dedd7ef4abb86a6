"""Serving under load, side by side in one run: `lorebase serve` on vLLM, streamed through
/v1/chat/completions in answer mode by the real `openai` client.

Run (about 25 minutes on 2 cores with the defaults; do not run it while others use the machine):

    .venv/bin/python bench/bench_serving.py --out bench/results/serving.md

Add `--repo PATH --repo-questions FILE.jsonl` to ask a second corpus (a real repository ingested
beside the demo corpus; the JSONL rows need a "question" field) and `--adapter FOLDER` to serve a
trained adapter (default: a LoRA made here with the training settings' shape, r=16 on q/k/v/o of the
last 8 layers, whose B matrices are zero as peft initialises them, so it answers exactly as the base
model does and the three paths below generate the same tokens).

What it does, in a fresh data home (or `--home`):

1. Ingests the demo corpus (`--corpus demo`: this repository, the three demo lectures and the issues
   export, as `make demo` does; `--corpus lectures`: the lectures only, for a quick check), a
   one-hour lecture made of the demo lectures' own cues repeated up to `--summary-minutes`, and the
   `--repo`, if given.
2. Registers the adapter twice: promoted (so the server merges it and serves it from its own engine,
   `generation.promoted_serving: merged`) and as `bench-lora` in `generation.adapters` (the same
   weights through vLLM's LoRA path on the base engine). Starts `lorebase serve` (vLLM `--dtype`, the
   CPU budget's defaults) and waits until it is ready and the merged engine serves.
3. Load: for each corpus, at concurrency 1 and 8, the three models take turns, round by round:
   the base model, `lorebase` (the promoted adapter, merged) and `bench-lora`. Reported per row: time
   to first token and latency p50/p95, completion tokens per second of wall time, decode tokens/s
   per request, errors.
4. Soak: `--soak-seconds` (default 600) at concurrency 8 on `lorebase`, with the resident memory of
   the server and its vLLM processes sampled every 10 s.
5. Summary of the one-hour lecture through the base engine, one call at a time (before batching,
   `generation.summary_concurrency: 1`) and batched (the default), same server, same lecture.
6. Roofline: this machine's memory bandwidth (a large tensor copy on every core, best of 5) divided
   by the bytes a decode step reads (the weights at the serving precision, plus the KV cache of a
   median prompt), against the decode tokens/s reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bench_api_soak import EXTRA_QUESTIONS, PHRASINGS, free_port, pct, server_statuses, stop_server  # bench/ on sys.path
from machine import cpu_name
from openai import AsyncOpenAI

REPO = Path(__file__).resolve().parent.parent
LECTURES = REPO / "datasets" / "transcripts" / "intro-rag"
ISSUES = REPO / "datasets" / "github" / "lorebase-issues.json"
DEMO_EXCLUDES = '["datasets/*.json", "datasets/*.jsonl", "datasets/*.srt", "datasets/*.vtt", "datasets/*.yaml"]'
ADAPTER = "bench-adapter"
LORA = "bench-lora"


# --- inputs -----------------------------------------------------------------------------------------


def demo_questions() -> list[str]:
    rows = [json.loads(x) for x in (REPO / "datasets" / "eval" / "demo.jsonl").read_text().splitlines() if x.strip()]
    base = [r["question"] for r in rows] + EXTRA_QUESTIONS
    return [p.format(q=q) for p in PHRASINGS[:2] for q in base]


def one_hour_lecture(out: Path, minutes: float) -> Path:
    """A WebVTT lecture of `minutes`, made of the demo lectures' cues (real lecture prose) repeated
    with shifted times; a sidecar names it."""
    cue = re.compile(r"(\d\d):(\d\d):(\d\d)[.,](\d{3}) --> (\d\d):(\d\d):(\d\d)[.,](\d{3})[^\n]*\n(.+?)(?:\n\n|\Z)", re.S)
    cues: list[tuple[float, float, str]] = []
    for f in sorted(LECTURES.glob("*.vtt")) + sorted(LECTURES.glob("*.srt")):
        shift = cues[-1][1] + 2.0 if cues else 0.0  # each file starts at 00:00: play them one after another
        for m in cue.finditer(f.read_text(encoding="utf-8")):
            g = [int(x) for x in m.groups()[:8]]
            start, end = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
            text = re.sub(r"<[^>]+>", "", m.group(9)).replace("\n", " ").strip()
            if text:
                cues.append((shift + start, shift + end, text))
    lines, offset, total = ["WEBVTT", ""], 0.0, minutes * 60
    while offset < total:
        last = 0.0
        for start, end, text in cues:
            if offset + end > total:
                break
            lines += [f"{_ts(offset + start)} --> {_ts(offset + end)}", text, ""]
            last = end
        offset += last + 2.0
        if last == 0.0:
            break
    out.mkdir(parents=True, exist_ok=True)
    (out / "one-hour-lecture.vtt").write_text("\n".join(lines), encoding="utf-8")
    (out / "one-hour-lecture.yaml").write_text("title: One-hour lecture\n", encoding="utf-8")
    return out


def _ts(s: float) -> str:
    return f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"


def make_adapter(model: Path, out: Path, settings: object) -> Path:
    """A LoRA of the training settings' shape with peft's own initialisation (B = 0: it changes nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    ft = settings.finetune  # type: ignore[attr-defined]
    layers = int(AutoConfig.from_pretrained(model).num_hidden_layers)
    chosen = list(range(layers - ft.lora_layers, layers)) if ft.lora_layers else None
    config = LoraConfig(r=ft.lora_r, lora_alpha=ft.lora_alpha, target_modules=list(ft.target_modules), task_type="CAUSAL_LM",
                        layers_to_transform=chosen)
    get_peft_model(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), config).save_pretrained(str(out))
    return out


# --- load -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    latency_s: float
    ttft_s: float | None
    completion_tokens: int
    prompt_tokens: int = 0
    error: str | None = None

    @property
    def decode_tok_s(self) -> float | None:
        if self.error or self.ttft_s is None or self.completion_tokens < 2 or self.latency_s <= self.ttft_s:
            return None
        return (self.completion_tokens - 1) / (self.latency_s - self.ttft_s)


@dataclass
class Cell:
    corpus: str
    label: str
    concurrency: int
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is None]

    def tok_s(self) -> float:
        return sum(o.completion_tokens for o in self.ok()) / self.wall_s if self.wall_s else 0.0


async def ask(client: AsyncOpenAI, model: str, question: str, max_tokens: int) -> Outcome:
    start = time.perf_counter()
    first, tokens, prompt, finish = None, 0, 0, None
    try:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0.0,
            stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage is not None:
                tokens, prompt = chunk.usage.completion_tokens, chunk.usage.prompt_tokens
    except Exception as e:  # counted, never fatal
        return Outcome(time.perf_counter() - start, first, tokens, prompt, f"{type(e).__name__}: {e}"[:200])
    latency = time.perf_counter() - start
    if finish is None:
        return Outcome(latency, first, tokens, prompt, "the stream ended without finish_reason")
    return Outcome(latency, first, tokens, prompt)


async def burst(client: AsyncOpenAI, cell: Cell, model: str, questions: list[str], n: int, offset: int, max_tokens: int) -> None:
    sem = asyncio.Semaphore(cell.concurrency)

    async def one(i: int) -> Outcome:
        async with sem:
            return await ask(client, model, questions[(offset + i * 7) % len(questions)], max_tokens)

    t0 = time.perf_counter()
    cell.outcomes += await asyncio.gather(*(one(i) for i in range(n)))
    cell.wall_s += time.perf_counter() - t0


# --- memory, bandwidth ------------------------------------------------------------------------------


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def memory_bandwidth_gb_s() -> float:
    """Bytes read plus written per second by a 512 MiB tensor copy on every core, best of 5."""
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    a = torch.ones(128 * 2**20, dtype=torch.float32)
    b = torch.empty_like(a)
    best = float("inf")
    for _ in range(6):
        t0 = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.numel() * 4 / best / 1e9


def model_bytes(model: Path, dtype: str) -> tuple[float, float]:
    """(weight bytes at the serving precision, KV-cache bytes per token of context)."""
    from safetensors import safe_open

    params = 0
    for f in model.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            for key in st.keys():
                params += _numel(list(st.get_slice(key).get_shape()))
    cfg = json.loads((model / "config.json").read_text())
    size = 4 if dtype == "float32" else 2
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv = 2 * cfg["num_hidden_layers"] * cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * head_dim * size
    return params * size, kv


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- the run ----------------------------------------------------------------------------------------


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lorebase serve exited with {proc.returncode}; see {log}")
        try:
            h = httpx.get(url + "/healthz", timeout=5).json()
            merged = (h.get("engines") or {}).get("merged") or {}
            if h.get("status") == "ok" and merged.get("adapter") == ADAPTER and merged.get("ready"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"the server (with its merged engine) was not ready in {timeout_s:.0f} s; see {log}")


async def summaries(settings_env: dict[str, str], vllm_url: str, model: Path, minutes: float) -> list[tuple[str, float, int, int]]:
    """The one-hour lecture summarised through the server's base engine: one call at a time, then batched."""
    from lorebase.generation.backend import ChatTokenizer
    from lorebase.generation.openai_backend import OpenAIBackend
    from lorebase.generation.queue import GenerationQueue
    from lorebase.generation.summarize import SummaryService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    out = []
    base = load_settings(home=settings_env["LOREBASE_HOME"], models={"generator": str(model)})
    store = Store(base.db_url)
    try:
        for label, concurrency in (("one call at a time (before)", 1), ("batched (now)", 0)):
            s = load_settings(home=base.home, models={"generator": str(model)}, generation={"summary_concurrency": concurrency})
            g = s.generation
            gen = OpenAIBackend(base_url=vllm_url + "/v1", base_model=model.name, context_length=2048,
                                queue=GenerationQueue(g.max_concurrency, g.max_queue), tokenizer=ChatTokenizer(model))
            service = SummaryService(s, store, gen)
            calls = []
            t0 = time.perf_counter()
            summary = await service.summarize(service.target(lecture="One-hour lecture"), progress=calls.append)
            out.append((label, time.perf_counter() - t0, calls[-1].done, summary.input_chars))
            print(f"  summary, {label}: {out[-1][1]:.0f} s, {calls[-1].done} calls", file=sys.stderr)
            await gen.aclose()
    finally:
        store.close()
    return out


async def drive(args: argparse.Namespace, url: str, base_model: str, corpora: list[tuple[str, list[str]]], server_pid: int
                ) -> tuple[list[Cell], Cell, list[float]]:
    client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
    models = [("base model", base_model), ("promoted, merged", "lorebase"), ("promoted, LoRA", LORA)]
    for _, m in models:  # warm-up, not counted
        await ask(client, m, corpora[0][1][0], 8)
    cells: dict[tuple[str, str, int], Cell] = {}
    for rnd in range(args.repeat):
        for corpus, qs in corpora:
            for c in (1, 8):
                n = args.requests_1 if c == 1 else 8 * args.rounds
                for label, m in models:
                    cell = cells.setdefault((corpus, label, c), Cell(corpus, label, c))
                    await asyncio.sleep(2.0)  # vLLM's threads spin a moment after their last step
                    await burst(client, cell, m, qs, n, rnd * 31, args.max_tokens)
                    print(f"  [{rnd + 1}] {corpus} {label} x{c}: {cell.tok_s():.1f} tok/s so far, "
                          f"errors {len(cell.outcomes) - len(cell.ok())}", file=sys.stderr)
    soak = Cell(corpora[0][0], "soak: promoted, merged", 8)
    rss: list[float] = []
    if args.soak_seconds > 0:
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                rss.append(tree_rss_mb(server_pid))
                stop.wait(10.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        qs = corpora[0][1]
        deadline = time.perf_counter() + args.soak_seconds
        counter = iter(range(10**9))

        async def worker() -> None:
            while time.perf_counter() < deadline:
                soak.outcomes.append(await ask(client, "lorebase", qs[(next(counter) * 7) % len(qs)], args.max_tokens))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(8)))
        soak.wall_s = time.perf_counter() - t0
        stop.set()
        sampler.join()
        rss.append(tree_rss_mb(server_pid))
    await client.close()
    return list(cells.values()), soak, rss


def main(args: argparse.Namespace) -> str:
    from lorebase.finetune.registry import Registry
    from lorebase.settings import load_settings
    from lorebase.store import Store
    from lorebase.store.models import AdapterVersion

    with tempfile.TemporaryDirectory(prefix="lorebase-serving-") as tmp:
        home = args.home or Path(tmp) / "home"
        port, vllm_port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_")}
        env.update({
            "LOREBASE_HOME": str(home), "LOREBASE_MODELS__GENERATOR": str(args.model), "LOREBASE_GENERATION__BACKEND": "vllm",
            "LOREBASE_GENERATION__VLLM_PYTHON": str(args.vllm_python), "LOREBASE_GENERATION__VLLM_PORT": str(vllm_port),
            "LOREBASE_GENERATION__VLLM_DTYPE": args.dtype, "LOREBASE_GENERATION__MAX_NEW_TOKENS": str(args.max_tokens),
            "LOREBASE_GENERATION__PROMOTED_SERVING": "merged", "LOREBASE_FINETUNE__ADAPTER_POLL_S": "1",
            "LOREBASE_SERVER__PORT": str(port), "LOREBASE_UI__ENABLED": "false", "LOREBASE_LOG_LEVEL": "WARNING",
            "LOREBASE_INGEST__EXCLUDE_GLOBS": DEMO_EXCLUDES, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO),
        })
        settings = load_settings(home=home, models={"generator": str(args.model)})
        settings.ensure_home()
        adapter = args.adapter or make_adapter(args.model, settings.adapters_dir / ADAPTER, settings)
        env["LOREBASE_GENERATION__ADAPTERS"] = json.dumps({LORA: str(adapter)})
        lecture = one_hour_lecture(Path(tmp) / "one-hour", args.summary_minutes or 60.0)
        sources = [str(LECTURES), str(lecture)] + ([str(REPO), str(ISSUES)] if args.corpus == "demo" else [])
        if args.repo:
            sources.append(str(args.repo))
        print(f"ingesting {len(sources)} sources into {home}", file=sys.stderr)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lorebase", "ingest", *sources, "--json"], env=env, check=True,
                       stdout=subprocess.DEVNULL, cwd=REPO)
        ingest_s = time.perf_counter() - t0
        store = Store(settings.db_url)
        with store.session() as s:
            s.add(AdapterVersion(name=ADAPTER, path=str(adapter), base_model=args.model.name, data_hash="0" * 64, status="candidate"))
        Registry(store).promote(ADAPTER)
        store.close()

        log = Path(tmp) / "serve.log"
        print("starting lorebase serve (vLLM, then the merged engine)", file=sys.stderr)
        t0 = time.perf_counter()
        with log.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "lorebase", "serve"], env=env, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=tmp)
        try:
            wait_ready(url, proc, log, 900)
            startup_s = time.perf_counter() - t0
            corpora = [(args.corpus, demo_questions())]
            if args.repo and args.repo_questions:
                rows = [json.loads(x) for x in args.repo_questions.read_text().splitlines() if x.strip()]
                corpora.append((args.repo.name, [r["question"] for r in rows]))
            load_before = os.getloadavg()
            cells, soak, rss = asyncio.run(drive(args, url, args.model.name, corpora, proc.pid))
            vllm_url = f"http://127.0.0.1:{vllm_port}"
            sums, sums_error = [], None
            try:
                if args.summary_minutes > 0:
                    sums = asyncio.run(summaries(env, vllm_url, args.model, args.summary_minutes))
            except Exception as e:  # keep the load and soak figures; say what broke and what vLLM logged
                sums_error = f"{type(e).__name__}: {e}" + vllm_log_tail(home)
                print(f"  summary failed: {sums_error}", file=sys.stderr)
            statuses = server_statuses(url)
            load_after = os.getloadavg()
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_server(proc)
    bw = memory_bandwidth_gb_s()
    weights, kv_per_token = model_bytes(args.model, args.dtype)
    return report(args, cells, soak, rss, sums, statuses, bw, weights, kv_per_token, load_before, load_after, ingest_s, startup_s,
                  sums_error)


def memory_trend(rss: list[float]) -> str:
    """Flat or growing: the median RSS of each quarter of the soak, and the growth from the second
    quarter's median to the last's (the first quarter includes the engines touching their KV cache pages)."""
    if len(rss) < 8:
        return "Too few memory samples for a trend."
    q = len(rss) // 4
    meds = [statistics.median(rss[i * q:(i + 1) * q if i < 3 else len(rss)]) for i in range(4)]
    late = (meds[3] - meds[1]) / meds[1]
    return ("Soak memory by quarter (median MB): " + " / ".join(f"{m:.0f}" for m in meds)
            + f"; second to last quarter {late:+.1%}.")


def vllm_log_tail(home: Path, lines: int = 8) -> str:
    """The last error lines of the engines' logs (an engine killed for memory says so only there or in the kernel log)."""
    found = []
    for f in sorted((home / "logs").glob("vllm*.log")):
        bad = [x for x in f.read_text(errors="replace").splitlines() if "Error" in x or "error" in x or "Killed" in x]
        found += [f"{f.name}: {x.strip()[:300]}" for x in bad[-lines:]]
    return ("; vLLM logged: " + " | ".join(found)) if found else ""


def report(args: argparse.Namespace, cells: list[Cell], soak: Cell, rss: list[float], sums: list[tuple[str, float, int, int]],
           statuses: dict[str, float], bw: float, weights: float, kv_per_token: float, load_before: tuple[float, ...],
           load_after: tuple[float, ...], ingest_s: float, startup_s: float, sums_error: str | None = None) -> str:
    loads = "/".join(f"{x:.1f}" for x in load_before) + " before, " + "/".join(f"{x:.1f}" for x in load_after) + " after"
    lines = [
        f"## Serving: /v1/chat/completions on vLLM {args.dtype} ({args.model.name})", "",
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {cpu_name()}, {len(os.sched_getaffinity(0))} cores usable, "
        f"Python {platform.python_version()}; load average (1/5/15 min) {loads}. Answer mode, streaming, greedy, up to "
        f"{args.max_tokens} new tokens; ingest {ingest_s:.0f} s, server ready with its merged engine in {startup_s:.0f} s.",
        "", "| corpus | model | concurrent | requests | errors | TTFT p50 s | TTFT p95 s | latency p50 s | latency p95 s | "
        "completion tok/s | decode tok/s per request (p50) | prompt tokens (p50) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in [*cells, soak] if soak.outcomes else cells:
        ok = c.ok()
        ttft = [o.ttft_s for o in ok if o.ttft_s is not None]
        dec = [d for o in ok if (d := o.decode_tok_s) is not None]
        lines.append(f"| {c.corpus} | {c.label} | {c.concurrency} | {len(c.outcomes)} | {len(c.outcomes) - len(ok)} | "
                     f"{pct(ttft, .5):.2f} | {pct(ttft, .95):.2f} | {pct([o.latency_s for o in ok], .5):.2f} | "
                     f"{pct([o.latency_s for o in ok], .95):.2f} | {c.tok_s():.1f} | {pct(dec, .5):.1f} | "
                     f"{pct([float(o.prompt_tokens) for o in ok], .5):.0f} |")
    by = {(c.corpus, c.label, c.concurrency): c for c in cells}
    corpus = cells[0].corpus if cells else soak.corpus
    lines += ["", "Ratios at the same concurrency, same rounds:"]
    for conc in (1, 8):
        b, m, lo = (by.get((corpus, k, conc)) for k in ("base model", "promoted, merged", "promoted, LoRA"))
        if b and m and lo and b.tok_s():
            lines.append(f"- x{conc}: merged {m.tok_s() / b.tok_s():.2f}x the base model's tokens/s, LoRA {lo.tok_s() / b.tok_s():.2f}x.")
    if rss:
        lines += ["", f"Soak memory (server + vLLM engines, RSS every 10 s): first {rss[0]:.0f} MB, last {rss[-1]:.0f} MB, "
                      f"max {max(rss):.0f} MB over {soak.wall_s:.0f} s.", "", memory_trend(rss)]
    lines += ["", "| one-hour lecture summary | wall s | generation calls | input chars |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {wall:.1f} | {calls} | {chars} |" for label, wall, calls, chars in sums]
    if len(sums) == 2:
        lines.append(f"\nBatching: {sums[0][1] / sums[1][1]:.2f}x faster.")
    if sums_error:
        lines.append(f"\nThe summary run failed: {sums_error}")
    prompts = [float(o.prompt_tokens) for c in cells for o in c.ok()]
    ctx = pct(prompts, .5) + args.max_tokens / 2
    one = bw * 1e9 / (weights + kv_per_token * ctx)
    eight = 8 * bw * 1e9 / (weights + 8 * kv_per_token * ctx)
    base1, base8 = by.get((corpus, "base model", 1)), by.get((corpus, "base model", 8))
    # Completion tokens per second of wall time, prefill included: answer mode holds text back until a
    # sentence is checked, so the gap between the first and last streamed piece is not decode time.
    dec1 = base1.tok_s() if base1 else float("nan")
    lines += ["", "Roofline (decode reads every weight once per step, plus each sequence's KV cache):",
              f"- memory bandwidth measured {bw:.1f} GB/s (512 MiB tensor copy, read + write, every core, best of 5); "
              f"weights {weights / 1e6:.0f} MB at {args.dtype}, KV cache {kv_per_token / 1e3:.0f} kB per token, "
              f"{ctx:.0f} tokens of context at the median;",
              f"- 1 sequence: roofline {one:.0f} tok/s, reached {dec1:.1f} (base model, completion tok/s of wall time, prefill included) = {dec1 / one:.0%};",
              f"- 8 sequences: roofline {eight:.0f} tok/s, reached {base8.tok_s() if base8 else float('nan'):.1f} "
              f"(base model, completion tok/s of wall time, prefill included) = {(base8.tok_s() if base8 else 0) / eight:.0%}."]
    lines += ["", "Server's count of chat requests by HTTP status: " + ", ".join(f"{k}: {int(v)}" for k, v in sorted(statuses.items())) + "."]
    errors = [o.error for c in [*cells, soak] for o in c.outcomes if o.error]
    if errors:
        lines += ["", "Errors (first 5): " + "; ".join(errors[:5])]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: models.generator from the settings)")
    ap.add_argument("--corpus", choices=["demo", "lectures"], default="demo")
    ap.add_argument("--repo", type=Path, default=None, help="a second corpus: a repository to ingest and ask about")
    ap.add_argument("--repo-questions", type=Path, default=None, help="JSONL with a `question` per row, for --repo")
    ap.add_argument("--adapter", type=Path, default=None, help="a LoRA adapter folder (default: one made here, see above)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--requests-1", type=int, default=8, help="requests per model and round at concurrency 1")
    ap.add_argument("--rounds", type=int, default=2, help="batches of 8 per model and round at concurrency 8")
    ap.add_argument("--repeat", type=int, default=2, help="rounds: the models take turns in each (0: only the soak)")
    ap.add_argument("--soak-seconds", type=float, default=600.0)
    ap.add_argument("--summary-minutes", type=float, default=60.0, help="the long lecture's length; 0: no summary run")
    ap.add_argument("--vllm-python", type=Path, default=REPO / ".venv-vllm" / "bin" / "python")
    ap.add_argument("--home", type=Path, default=None, help="data home (default: a temporary one, removed afterwards)")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = ap.parse_args()
    if args.model is None:
        from lorebase.offline_models import generator_path
        from lorebase.settings import load_settings

        args.model = generator_path(load_settings())
    return args


if __name__ == "__main__":
    arguments = parse_args()
    table = main(arguments)
    print(table)
    if arguments.out is not None:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(table, encoding="utf-8")
