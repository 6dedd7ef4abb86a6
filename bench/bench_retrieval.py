"""Retrieval latency and FAISS scaling: end to end at 10k chunks, FAISS alone at 1M vectors.

Run (about 20-30 minutes on 2 cores, most of it building HNSW over 1M vectors):

    .venv/bin/python bench/bench_retrieval.py --out bench/results/retrieval.md

Part 1 writes a synthetic corpus of realistic-ish chunks (code with generated identifiers, docs,
issues, commits, lecture sentences) into a temporary SQLite store, embeds it with the real
embedder through ``IndexSyncer`` and times ``SearchService.retrieve`` (query embedding, FAISS,
BM25, fusion, loading the rows) per mode, plus the query embedding alone.

Part 2 times FAISS alone through ``ChunkFaissStore.search`` (our code path, one query at a time)
over clustered synthetic unit vectors of dim 384: centres plus a low-rank spread plus a little
isotropic noise, so that neighbourhoods have structure as real embeddings do. Exact search
(IndexFlatIP) is the ground truth for HNSW's recall@10. Build time and resident memory growth
are reported for each index.
"""

from __future__ import annotations

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

import argparse
import gc
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.index.faiss_store import ChunkFaissStore, new_faiss_index
from lorebase.index.search import SearchService
from lorebase.index.sync import IndexSyncer
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import Chunk, Source, source_id_for

TOPICS = {
    "caching": "cache eviction entry expiry memory hit miss lru ttl warm invalidate".split(),
    "parsing": "parser token grammar header line colon syntax lexer ast node".split(),
    "training": "gradient loss learning rate epoch batch optimizer weight momentum overfit".split(),
    "storage": "database table index query transaction commit rollback schema migration row".split(),
    "network": "request response socket timeout retry header proxy tls certificate port".split(),
    "auth": "token password login session permission role scope secret hash user".split(),
    "config": "setting option yaml environment variable default override file path key".split(),
    "testing": "test fixture assert mock coverage case suite failure regression flaky".split(),
}
VERBS = "load save parse build read write fetch update remove check render merge split index encode decode".split()
FILLER = (
    "the this that when then it we you they is are was be can should will not only also because after before "
    "with without into from over under every each some most".split()
)


def machine() -> dict[str, str]:
    cpu = cpu_name(platform.processor() or "?")
    import faiss
    import torch

    return {
        "cpu": cpu,
        "nproc": str(len(os.sched_getaffinity(0))),
        "torch_threads": str(torch.get_num_threads()),
        "faiss_threads": str(faiss.omp_get_max_threads()),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg()),
        "python": platform.python_version(),
    }


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# --- part 1: end to end at 10k chunks ------------------------------------------------------------


def _ident(rng: random.Random, topic: str) -> str:
    a, b = rng.choice(VERBS), rng.choice(TOPICS[topic])
    style = rng.randrange(3)
    if style == 0:
        return f"{a}_{b}_{rng.choice(TOPICS[topic])}"
    if style == 1:
        return a + b.capitalize() + rng.choice(TOPICS[topic]).capitalize()
    return b.capitalize() + rng.choice(TOPICS[topic]).capitalize() + "Manager"


def _sentence(rng: random.Random, topic: str, n: int) -> str:
    words = [rng.choice(TOPICS[topic]) if rng.random() < 0.45 else rng.choice(FILLER) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def synthetic_chunk(rng: random.Random, kind: str, topic: str) -> tuple[str, str]:
    """(text, identifier mentioned in it) for one chunk of this kind and topic."""
    ident = _ident(rng, topic)
    if kind == "code":
        args = ", ".join(rng.sample(TOPICS[topic], 2))
        words = TOPICS[topic]
        body = "\n".join(f"    {rng.choice(words)} = {_ident(rng, topic)}({rng.choice(words)})" for _ in range(rng.randint(4, 12)))
        doc = _sentence(rng, topic, rng.randint(8, 16))
        return f'def {ident}({args}):\n    """{doc}"""\n{body}\n    return {rng.choice(TOPICS[topic])}', ident
    if kind == "issue":
        return f"{ident} fails: " + " ".join(_sentence(rng, topic, rng.randint(8, 18)) for _ in range(rng.randint(3, 6))), ident
    if kind == "commit":
        return f"Fix {ident} when {rng.choice(TOPICS[topic])} is empty\n\n" + _sentence(rng, topic, rng.randint(10, 20)), ident
    return " ".join(_sentence(rng, topic, rng.randint(8, 20)) for _ in range(rng.randint(3, 7))), ident


KINDS = [("code", 0.4), ("doc", 0.25), ("issue", 0.15), ("transcript", 0.15), ("commit", 0.05)]


def fill_store(store: Store, n_chunks: int, seed: int = 7) -> list[str]:
    """Write ``n_chunks`` chunks in sources of up to 5; returns identifiers usable as queries."""
    rng = random.Random(seed)
    idents: list[str] = []
    made = 0
    src_no = 0
    with store.session() as s:
        while made < n_chunks:
            kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
            topic = rng.choice(list(TOPICS))
            per = 1 if kind == "commit" else min(rng.randint(2, 5), n_chunks - made)
            key = f"{kind}:bench/repo:{topic}/{src_no}"
            src_no += 1
            texts = [synthetic_chunk(rng, kind, topic) for _ in range(per)]
            idents.extend(i for _, i in texts)
            src = Source(
                id=source_id_for(key), key=key, kind=kind, title=f"{topic} {kind} {src_no}", text="", content_hash="h",
                repo="bench/repo", path=f"src/{topic}/{src_no}.py" if kind in ("code", "doc") else None,
                lecture=f"lecture-{topic}" if kind == "transcript" else None,
            )
            src.chunks = [
                Chunk(ordinal=i, text=t, content_hash=str(i), start_line=10 * i + 1, end_line=10 * i + 10) for i, (t, _) in enumerate(texts)
            ]
            s.add(src)
            made += per
            if src_no % 500 == 0:
                s.flush()
    return idents


def prose_queries(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        topic = rng.choice(list(TOPICS))
        out.append(f"how does the {rng.choice(TOPICS[topic])} {rng.choice(TOPICS[topic])} handle {rng.choice(TOPICS[topic])}")
    return out


def bench_end_to_end(n_chunks: int, n_queries: int, log: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lorebase-bench-") as home:
        settings = load_settings(home=Path(home))
        settings.ensure_home()
        store = Store(settings.db_url)
        t0 = time.perf_counter()
        idents = fill_store(store, n_chunks)
        t_fill = time.perf_counter() - t0
        log(f"store filled with {n_chunks} chunks in {t_fill:.1f} s; embedding…")
        embedder = LorebaseEmbedding.from_settings(settings)
        syncer = IndexSyncer(settings, store, embedder, progress=sys.stderr.isatty())
        t0 = time.perf_counter()
        r = syncer.sync()
        t_sync = time.perf_counter() - t0
        service = SearchService(settings, store, embedder=embedder, dense=syncer.dense)
        t0 = time.perf_counter()
        service.bm25.refresh()
        t_bm25 = time.perf_counter() - t0
        rng = random.Random(11)
        queries = [q for pair in zip(rng.sample(idents, n_queries // 2), prose_queries(rng, n_queries // 2), strict=True) for q in pair]
        for q in queries[:10]:  # warm-up
            service.retrieve(q, k=10)
        # Modes take turns query by query, so a burst of load on the machine hits them alike.
        steps: dict[str, Any] = {
            "hybrid": lambda q: service.retrieve(q, k=10, mode="hybrid"),
            "dense": lambda q: service.retrieve(q, k=10, mode="dense"),
            "bm25": lambda q: service.retrieve(q, k=10, mode="bm25"),
            "query embedding only": embedder.embed_query,
        }
        times: dict[str, list[float]] = {name: [] for name in steps}
        for q in queries:
            for name, step in steps.items():
                t = time.perf_counter()
                step(q)
                times[name].append((time.perf_counter() - t) * 1000)
        rows = {name: (pct(ts, 50), pct(ts, 95)) for name, ts in times.items()}
        for name, (p50, p95) in rows.items():
            log(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        store.close()
        return {
            "chunks": r.total,
            "queries": len(queries),
            "embed_s": t_sync,
            "embed_rate": r.total / t_sync,
            "bm25_s": t_bm25,
            "rss_mb": rss_mb(),
            "rows": rows,
            "embedder": f"{embedder.model_name} ({embedder.dtype})",
        }


# --- part 2: FAISS alone at 1M --------------------------------------------------------------------


def clustered_vectors(n: int, dim: int, seed: int, centres: np.ndarray, basis: np.ndarray, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        c = rng.integers(0, len(centres), m)
        x = centres[c] * 0.6 + rng.standard_normal((m, basis.shape[0]), dtype=np.float32) @ basis
        x += noise * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i : i + m] = x
    return out


def time_queries(store: ChunkFaissStore, queries: np.ndarray, k: int) -> tuple[list[float], list[list[int]]]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        hits = store.search(q, k)
        times.append((time.perf_counter() - t) * 1000)
        results.append([i for i, _ in hits])
    return times, results


def bench_faiss(n: int, dim: int, n_queries: int, m: int, ef_construction: int, ef_searches: list[int], log: Any) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    n_centres, rank, noise = 2048, 48, 0.1
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    basis = rng.standard_normal((rank, dim), dtype=np.float32) / np.sqrt(rank)
    t0 = time.perf_counter()
    data = clustered_vectors(n, dim, 1, centres, basis, noise)
    queries = clustered_vectors(n_queries, dim, 2, centres, basis, noise)
    ids = np.arange(1, n + 1, dtype=np.int64)
    log(f"{n} vectors generated in {time.perf_counter() - t0:.1f} s")
    rows = []

    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    flat = ChunkFaissStore(new_faiss_index(dim, "flat"))
    flat.add_vectors(ids, data)
    build = time.perf_counter() - t0
    mem = rss_mb() - before
    times, exact = time_queries(flat, queries, 10)
    exact_row = {"index": "exact (IDMap2 + FlatIP)", "build_s": build, "mem_mb": mem, "ef": "-", "recall": 1.0}
    rows.append({**exact_row, "p50": pct(times, 50), "p95": pct(times, 95)})
    log(f"exact: p50 {pct(times, 50):.1f} ms")
    del flat
    gc.collect()

    before = rss_mb()
    t0 = time.perf_counter()
    hnsw = ChunkFaissStore(new_faiss_index(dim, "hnsw", m, ef_construction), m=m, ef_construction=ef_construction)
    hnsw.add_vectors(ids, data)
    build = time.perf_counter() - t0
    mem = rss_mb() - before
    log(f"HNSW built in {build:.0f} s")
    for ef in ef_searches:
        hnsw._ef_search = ef
        times, got = time_queries(hnsw, queries, 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)]))
        rows.append(
            {"index": f"HNSW (M={m}, efConstruction={ef_construction})", "build_s": build, "mem_mb": mem, "ef": ef,
             "p50": pct(times, 50), "p95": pct(times, 95), "recall": recall}
        )
        log(f"HNSW efSearch={ef}: p50 {pct(times, 50):.2f} ms, recall@10 {recall:.3f}")
    return rows


# --- report ---------------------------------------------------------------------------------------


def render(info: dict[str, str], e2e: dict[str, Any] | None, faiss_rows: list[dict[str, Any]] | None, n: int, dim: int) -> str:
    lines = [
        "# Retrieval benchmark",
        "",
        f"Machine: {info['cpu']}, nproc {info['nproc']} (torch threads {info['torch_threads']}, faiss threads "
        f"{info['faiss_threads']}), Python {info['python']}, {info['date']}.",
        f"Load average (1, 5, 15 min) at the start: {info['load']}; at the end: {'{:.1f}, {:.1f}, {:.1f}'.format(*os.getloadavg())}.",
        "",
    ]
    if e2e:
        lines += [
            f"## End to end at {e2e['chunks']:,} chunks "
            f"(SearchService.retrieve, k=10, {e2e['queries']} queries: half identifiers, half prose)",
            "",
            f"Embedder {e2e['embedder']}. Embedding and indexing the corpus: {e2e['embed_s']:.1f} s "
            f"({e2e['embed_rate']:.0f} chunks/s); BM25 build {e2e['bm25_s']:.2f} s; process RSS {e2e['rss_mb']:.0f} MB.",
            "",
            "| mode | p50 ms | p95 ms | target |",
            "|---|---:|---:|---|",
        ]
        for mode, (p50, p95) in e2e["rows"].items():
            target = "p50 < 50 ms" if mode == "hybrid" else ""
            lines.append(f"| {mode} | {p50:.1f} | {p95:.1f} | {target} |")
        lines.append("")
    if faiss_rows:
        lines += [
            f"## FAISS alone at {n:,} vectors, dim {dim} (clustered synthetic unit vectors, one query at a time)",
            "",
            "| index | build s | memory MB | efSearch | p50 ms | p95 ms | recall@10 vs exact |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in faiss_rows:
            cells = [r["index"], f"{r['build_s']:.1f}", f"{r['mem_mb']:.0f}", str(r["ef"])]
            cells += [f"{r['p50']:.2f}", f"{r['p95']:.2f}", f"{r['recall']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Targets: p50 < 5 ms with recall@10 >= 0.9 at 1M vectors."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write the markdown table here")
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--vectors", type=int, default=1_000_000)
    p.add_argument("--faiss-queries", type=int, default=500)
    p.add_argument("--hnsw-m", type=int, default=None, help="default: index.hnsw_m")
    p.add_argument("--ef-construction", type=int, default=None, help="default: index.hnsw_ef_construction")
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--skip-faiss", action="store_true")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    defaults = load_settings().index
    info = machine()
    e2e = None if args.skip_e2e else bench_end_to_end(args.chunks, args.queries, log)
    rows = None
    if not args.skip_faiss:
        rows = bench_faiss(
            args.vectors, 384, args.faiss_queries, args.hnsw_m or defaults.hnsw_m,
            args.ef_construction or defaults.hnsw_ef_construction, args.ef_search, log,
        )
    report = render(info, e2e, rows, args.vectors, 384)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
