"""Soak test of the served API: `lorebase serve` with the vLLM backend, driven through
/v1/chat/completions by the real `openai` client at a fixed concurrency for a fixed time.

Run (about 3 minutes on 2 cores: ~40 s to ingest and start, then the soak):

    .venv/bin/python bench/bench_api_soak.py --duration 120 --out bench/results/api_soak.md

What happens: a fresh data home in a temporary folder; the demo lectures (datasets/transcripts/intro-rag)
ingested with `lorebase ingest`; `lorebase serve` started as its own process (it starts vLLM on the
model, as in production; the chat UI off); then N workers, each an AsyncOpenAI stream after stream,
ask grounded questions (answer mode: retrieval, generation, grounding check) until the time is up.
The questions are the demo evaluation set's lecture questions and a few more, each asked in several
phrasings, so that prompts vary. Reported: requests completed, QPS, latency and time to first token
p50/p95, completion tokens per second, errors (any exception, a stream without finish_reason, or an
answer without sources) and the server's own request counts by status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)
from openai import AsyncOpenAI

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "datasets" / "transcripts" / "intro-rag"

EXTRA_QUESTIONS = [
    "What does BM25 reward in a passage?",
    "How does reciprocal rank fusion combine the two result lists?",
    "Why does the course combine keyword search with embeddings?",
    "What should the system say when the sources do not contain the answer?",
    "Why are the sources numbered in the prompt?",
    "What is LoRA and why is it cheap to train?",
    "Which parts of the model does LoRA adapt in the course project?",
    "How is a fine-tuned model evaluated before it is used?",
    "What is retrieval-augmented generation?",
    "Who described retrieval-augmented generation under that name?",
    "What embedding model does the course use?",
]
PHRASINGS = ["{q}", "Briefly: {q}", "{q} Answer in one or two sentences.", "Question from a student: {q}"]


def questions() -> list[str]:
    rows = [json.loads(line) for line in (REPO / "datasets" / "eval" / "demo.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    base = [r["question"] for r in rows if r.get("kind") == "transcript"] + EXTRA_QUESTIONS
    return [p.format(q=q) for p in PHRASINGS for q in base]


@dataclass
class Outcome:
    latency_s: float
    ttft_s: float | None
    completion_tokens: int
    supported: bool | None
    error: str | None = None
    prompt_tokens: int = 0


@dataclass
class Soak:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is None]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ask(client: AsyncOpenAI, model: str, question: str, max_tokens: int) -> Outcome:
    start = time.perf_counter()
    first: float | None = None
    tokens, prompt, finish, sources, supported = 0, 0, None, 0, None
    try:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0.0,
            stream=True, stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
                extra = chunk.model_extra or {}
                sources = len(extra.get("sources") or [])
                supported = (extra.get("grounding") or {}).get("supported")
            if chunk.usage is not None:
                tokens, prompt = chunk.usage.completion_tokens, chunk.usage.prompt_tokens
    except Exception as e:  # every failure is counted, none stops the soak
        return Outcome(time.perf_counter() - start, first, tokens, None, f"{type(e).__name__}: {e}"[:300])
    latency = time.perf_counter() - start
    if finish is None:
        return Outcome(latency, first, tokens, supported, "the stream ended without finish_reason")
    if sources == 0:
        return Outcome(latency, first, tokens, supported, "an answer without sources")
    return Outcome(latency, first, tokens, supported, prompt_tokens=prompt)


async def soak(url: str, model: str, concurrency: int, duration_s: float, max_tokens: int) -> Soak:
    qs = questions()
    client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
    result = Soak()
    counter = iter(range(10**9))
    await ask(client, model, qs[0], max_tokens)  # warm-up, not counted
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            result.outcomes.append(await ask(client, model, qs[(i * 7) % len(qs)], max_tokens))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - start  # requests running at the deadline finish and count
    await client.close()
    return result


def server_statuses(url: str) -> dict[str, float]:
    """lorebase_http_requests_total for the chat route, by status, from the server's /metrics."""
    text = httpx.get(url + "/metrics", timeout=30).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("lorebase_http_requests_total{") and 'route="/v1/chat/completions"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            out[status] = out.get(status, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def start_server(env: dict[str, str], log: Path, url: str, timeout_s: float = 600) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "lorebase", "serve"], env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=log.parent)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lorebase serve exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url + "/healthz", timeout=5).json().get("generator") == "up":
                return proc
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1.0)
    stop_server(proc)
    raise RuntimeError(f"the server was not ready in {timeout_s:.0f} s; see {log}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first: uvicorn shuts down and lorebase stops its vLLM server; the group is killed only if that hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _loads(la: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in la)


def report(args: argparse.Namespace, s: Soak, statuses: dict[str, float], load_before: tuple[float, float, float],
           load_after: tuple[float, float, float], startup_s: float) -> str:
    ok = s.ok
    lat = [o.latency_s for o in ok]
    ttft = [o.ttft_s for o in ok if o.ttft_s is not None]
    tokens = sum(o.completion_tokens for o in ok)
    grounded = [o.supported for o in ok if o.supported is not None]
    prompts = [float(o.prompt_tokens) for o in ok]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## API soak: /v1/chat/completions on vLLM ({args.model.name})",
        "",
        f"{now}; {cpu_name()}, {len(os.sched_getaffinity(0))} cores usable, Python {platform.python_version()}; "
        f"load average (1/5/15 min) {_loads(load_before)} before, {_loads(load_after)} after. "
        f"`lorebase serve` (vLLM {args.dtype}, answer mode: retrieval + generation + grounding check) over "
        f"{CORPUS.relative_to(REPO)}; {args.concurrency} concurrent streams from AsyncOpenAI for {args.duration:.0f} s, "
        f"up to {args.max_tokens} new tokens, greedy, {len(questions())} distinct questions (prompts with their sources "
        f"{pct(prompts, 0.5):.0f} tokens at the median); server ready in {startup_s:.0f} s.",
        "",
        "| requests | errors | QPS | latency p50 s | latency p95 s | TTFT p50 s | TTFT p95 s | completion tok/s | grounded |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(s.outcomes)} | {len(s.errors)} | {len(ok) / s.wall_s:.2f} | {pct(lat, 0.5):.2f} | {pct(lat, 0.95):.2f} | "
        f"{pct(ttft, 0.5):.2f} | {pct(ttft, 0.95):.2f} | {tokens / s.wall_s:.1f} | "
        f"{sum(grounded)}/{len(grounded)} |",
        "",
        "Server's count of chat requests by HTTP status (warm-up included): "
        + ", ".join(f"{k}: {int(v)}" for k, v in sorted(statuses.items())) + ".",
    ]
    if s.errors:
        lines += ["", "Errors:"] + [f"- {n} x {msg}" for msg, n in Counter(o.error for o in s.errors).most_common(10)]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="lorebase-soak-") as tmp:
        home = args.home or Path(tmp) / "home"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_")}
        env.update({
            "LOREBASE_HOME": str(home),
            "LOREBASE_MODELS__GENERATOR": str(args.model),
            "LOREBASE_GENERATION__BACKEND": "vllm",
            "LOREBASE_GENERATION__VLLM_PYTHON": str(args.vllm_python),
            "LOREBASE_GENERATION__VLLM_PORT": str(free_port()),
            "LOREBASE_GENERATION__VLLM_DTYPE": args.dtype,
            "LOREBASE_GENERATION__MAX_NEW_TOKENS": str(args.max_tokens),
            "LOREBASE_SERVER__PORT": str(port),
            "LOREBASE_UI__ENABLED": "false",
            "LOREBASE_LOG_LEVEL": "WARNING",
            "HF_HUB_OFFLINE": "1",
        })
        print(f"ingesting {CORPUS}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "lorebase", "ingest", str(CORPUS), "--json"], env=env, check=True,
                       stdout=subprocess.DEVNULL, cwd=tmp)
        log = Path(tmp) / "serve.log"
        print("starting lorebase serve (and vLLM)", file=sys.stderr)
        t0 = time.perf_counter()
        proc = start_server(env, log, url)
        startup = time.perf_counter() - t0
        try:
            model = httpx.get(url + "/v1/models", timeout=30).json()["data"][0]["id"]
            load_before = os.getloadavg()
            print(f"soaking for {args.duration:.0f} s at {args.concurrency} concurrent", file=sys.stderr)
            result = asyncio.run(soak(url, model, args.concurrency, args.duration, args.max_tokens))
            load_after = os.getloadavg()
            statuses = server_statuses(url)
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_server(proc)
        if result.errors:
            sys.stderr.write("server log tail:\n" + log.read_text(errors="replace")[-4000:])
    return report(args, result, statuses, load_before, load_after, startup)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: models.generator from the settings)")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load (default 120)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--vllm-python", type=Path, default=REPO / ".venv-vllm" / "bin" / "python")
    ap.add_argument("--home", type=Path, default=None, help="data home (default: a temporary one, removed afterwards)")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()
    if args.model is None:  # the generator the settings name (prepared by `lorebase models prepare`)
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
