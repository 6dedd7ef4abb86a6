"""Retrieval latency and FAISS scaling: end to end at 10k chunks, FAISS alone at 1M vectors.

Run (FAISS part about 15 minutes on 2 cores; the end-to-end part adds the embedding of 10k chunks):

    .venv/bin/python bench/bench_retrieval.py --skip-e2e --out bench/results/retrieval.md \
        --real-index ~/.lorebase/index/dense-*.faiss

Part 1 writes a synthetic corpus of realistic-ish chunks (code with generated identifiers, docs,
issues, commits, lecture sentences) into a temporary SQLite store, embeds it with the real
embedder through ``IndexSyncer`` and times ``SearchService.retrieve`` (query embedding, FAISS,
BM25, fusion, loading the rows) per mode, plus the query embedding alone.

Part 2 times FAISS alone through ``ChunkFaissStore.search`` (our code path, one query at a time,
one thread) over clustered synthetic unit vectors of dim 384: centres plus a low-rank spread plus
a little isotropic noise. The candidates side by side: exact search (the ground truth for
recall@10), IVF-PQ with exact re-scoring and IVF-Flat at 1M (built by ``converted``, as the
index does past ``exact_max_vectors``: k-means on a sample, then the adds), each swept over the
share of lists probed; and HNSW (M=32, efConstruction 40 and 200, flat and SQ8 storage) at a
smaller size, since one HNSW build of 1M vectors takes 26 minutes or more on 2 cores. Build time,
resident memory growth and the load average are recorded with every row.

``--real-index`` compares the generator's difficulty with real embeddings (saved lorebase
indexes) at the same size: local intrinsic dimensionality and IVF/HNSW recall. At the default
centre weight (0.6) the synthetic neighbourhoods are much harder than real all-MiniLM-L6-v2
chunks (median LID about 40 against 11): a pessimistic stand-in, far from trivially easy.
"""

from __future__ import annotations

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
from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.index.faiss_store import ChunkFaissStore
from lorebase.index.faiss_types import new_faiss_index, pq_subquantizers
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


def bench_end_to_end(n_chunks: int, n_queries: int, log: Any, home: Path | None = None,
                     question_files: list[Path] | None = None, bm25_builds: int = 1) -> dict[str, Any]:
    """With ``home``: time queries (the questions of ``question_files``) against that data home's
    existing store and index, nothing written; else against a synthetic corpus of ``n_chunks``.
    The BM25 index is built ``bm25_builds`` times (the median is reported)."""
    with tempfile.TemporaryDirectory(prefix="lorebase-bench-") as tmp:
        settings = load_settings(home=home or Path(tmp))
        settings.ensure_home()
        store = Store(settings.db_url)
        embedder = LorebaseEmbedding.from_settings(settings)
        syncer = IndexSyncer(settings, store, embedder, progress=sys.stderr.isatty())
        if home is None:
            t0 = time.perf_counter()
            idents = fill_store(store, n_chunks)
            log(f"store filled with {n_chunks} chunks in {time.perf_counter() - t0:.1f} s; embedding…")
            t0 = time.perf_counter()
            r = syncer.sync()
            t_sync = time.perf_counter() - t0
        else:
            syncer.open()
            r, t_sync = syncer.sync(), float("nan")
        service = SearchService(settings, store, embedder=embedder, dense=syncer.dense)
        builds = []
        for i in range(max(1, bm25_builds)):
            t0 = time.perf_counter()
            service.bm25.refresh(force=i > 0)
            builds.append(time.perf_counter() - t0)
        t_bm25 = float(np.median(builds))
        rng = random.Random(11)
        if home is None:
            queries = [q for pair in zip(rng.sample(idents, n_queries // 2), prose_queries(rng, n_queries // 2), strict=True)
                       for q in pair]
        else:
            import json

            pool = [json.loads(line)["question"] for f in question_files or [] for line in f.read_text().splitlines() if line.strip()]
            queries = rng.sample(pool, min(n_queries, len(pool)))
        # The same retrievers with plain convex fusion: what the file-level, kind and definition
        # priors cost; and without the definition prior, or the symbol prior, alone.
        no_priors = settings.retrieval.model_copy(update={"file_weight": 0.0, "file_dense_weight": 0.0,
                                                          "symbol_weight": 0.0, "definition_weight": 0.0, "kind_bias": {}})
        plain = SearchService(settings.model_copy(update={"retrieval": no_priors}), store, embedder=embedder,
                              dense=syncer.dense, bm25=service.bm25)
        no_defs = settings.retrieval.model_copy(update={"definition_weight": 0.0})
        undefined = SearchService(settings.model_copy(update={"retrieval": no_defs}), store, embedder=embedder,
                                  dense=syncer.dense, bm25=service.bm25)
        no_symbols = settings.retrieval.model_copy(update={"symbol_weight": 0.0})
        unnamed = SearchService(settings.model_copy(update={"retrieval": no_symbols}), store, embedder=embedder,
                                dense=syncer.dense, bm25=service.bm25)
        for q in queries[:10]:  # warm-up
            service.retrieve(q, k=10)
        # Modes take turns query by query, so a burst of load on the machine hits them alike.
        steps: dict[str, Any] = {
            "hybrid": lambda q: service.retrieve(q, k=10, mode="hybrid"),
            "hybrid without the definition prior": lambda q: undefined.retrieve(q, k=10, mode="hybrid"),
            "hybrid without the symbol prior": lambda q: unnamed.retrieve(q, k=10, mode="hybrid"),
            "hybrid without file/kind/definition priors": lambda q: plain.retrieve(q, k=10, mode="hybrid"),
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
            "embed_rate": r.total / t_sync if t_sync == t_sync else float("nan"),
            "bm25_s": t_bm25,
            "bm25_builds": len(builds),
            "rss_mb": rss_mb(),
            "rows": rows,
            "embedder": f"{embedder.model_name} ({embedder.dtype})",
            "home": str(home) if home else None,
            "query_kind": "questions of " + ", ".join(f.name for f in question_files or []) if home else "half identifiers, half prose",
        }


# --- part 2: FAISS alone at 1M --------------------------------------------------------------------


def clustered_vectors(
    n: int, dim: int, seed: int, centres: np.ndarray, basis: np.ndarray, noise: float, centre_weight: float = 0.6
) -> np.ndarray:
    """Unit vectors: a random centre (weighted), plus a Gaussian in a shared low-rank subspace, plus
    isotropic noise. ``centre_weight`` sets how far apart the clusters stand against their spread:
    0.6 (the default) gives neighbourhoods much harder than real embeddings (see ``realism``)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        c = rng.integers(0, len(centres), m)
        x = centres[c] * centre_weight + rng.standard_normal((m, basis.shape[0]), dtype=np.float32) @ basis
        x += noise * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i : i + m] = x
    return out


def synthetic(n: int, dim: int, seed: int, centre_weight: float) -> np.ndarray:
    """The benchmark's data: 2,048 centres, a rank-48 spread, noise 0.1 (fixed generator parameters)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2048, dim), dtype=np.float32)
    basis = rng.standard_normal((48, dim), dtype=np.float32) / np.sqrt(48)
    return clustered_vectors(n, dim, seed, centres, basis, 0.1, centre_weight)


def index_mb(index: Any) -> float:
    """The index's serialized size (what it holds in memory, without allocator slack), counted, not stored."""
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total / 2**20


def recall_at_10(got: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(got, exact, strict=True)]))


def time_queries(search: Any, queries: np.ndarray, k: int) -> tuple[list[float], list[list[int]]]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        hits = search(q, k)
        times.append((time.perf_counter() - t) * 1000)
        results.append([i for i, _ in hits])
    return times, results


def _row(
    index: str, build: float, mem: float, size: float, setting: str, times: list[float], recall: float, vectors: int
) -> dict[str, Any]:  # fmt: skip
    return {"index": index, "vectors": vectors, "build_s": build, "mem_mb": mem, "size_mb": size, "setting": setting,
            "p50": pct(times, 50), "p95": pct(times, 95), "recall": recall, "load": os.getloadavg()[0]}  # fmt: skip


def bench_faiss(
    n: int, dim: int, n_queries: int, centre_weight: float, shares: list[float], ivf_flat_shares: list[float],
    hnsw_vectors: int, log: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """Exact, IVF-PQ (+ exact re-scoring) and IVF-Flat at ``n`` vectors, all through ``ChunkFaissStore``;
    HNSW variants at ``hnsw_vectors`` (their build on 2 cores takes too long at 1M)."""
    t0 = time.perf_counter()
    data = synthetic(n, dim, 1, centre_weight)
    queries = synthetic(n_queries, dim, 2, centre_weight)
    ids = np.arange(1, n + 1, dtype=np.int64)
    log(f"{n} vectors generated in {time.perf_counter() - t0:.1f} s")
    rows: list[dict[str, Any]] = []

    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    flat = ChunkFaissStore(new_faiss_index(dim, "flat"))
    flat.add_vectors(ids, data)
    build = time.perf_counter() - t0
    mem = rss_mb() - before
    times, exact = time_queries(flat.search, queries, 10)
    rows.append(_row("exact (IDMap2 + FlatIP)", build, mem, index_mb(flat.client), "-", times, 1.0, n))
    log(f"exact: p50 {pct(times, 50):.1f} ms")

    for kind, sweep in (("ivfpq", shares), ("ivf", ivf_flat_shares)):
        if not sweep:
            continue
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        store = flat.converted(kind)  # our path: k-means on a sample of the live vectors, then the adds
        build = time.perf_counter() - t0
        mem = rss_mb() - before
        name = (f"IVF{store.nlist},PQ{pq_subquantizers(dim)}x4fs + exact re-score (refine x16)" if kind == "ivfpq"
                else f"IVF{store.nlist},Flat")  # fmt: skip
        size = index_mb(store.client)
        log(f"{name} built in {build:.0f} s (+{mem:.0f} MB RSS, {size:.0f} MB index)")
        for share in sweep:
            store._probe_share = share
            times, got = time_queries(store.search, queries, 10)
            r = recall_at_10(got, exact)
            rows.append(_row(name, build, mem, size, f"nprobe {store.nprobe} ({share:.2%})", times, r, n))
            log(f"  nprobe {store.nprobe}: p50 {pct(times, 50):.2f} ms, p95 {pct(times, 95):.2f} ms, recall@10 {r:.3f}")
        del store
    del flat

    if hnsw_vectors:
        rows += bench_hnsw(data[:hnsw_vectors], ids[:hnsw_vectors], queries, log)
    return rows


def bench_hnsw(data: np.ndarray, ids: np.ndarray, queries: np.ndarray, log: Any) -> list[dict[str, Any]]:
    """HNSW (flat and scalar-quantised storage) at a smaller size, against its own exact ground truth."""
    import faiss

    n, dim = data.shape
    exact_index = faiss.IndexFlatIP(dim)
    exact_index.add(data)
    _, exact_pos = exact_index.search(queries, 10)
    exact = [[int(ids[i]) for i in row] for row in exact_pos]
    del exact_index
    rows = []
    for m, efc, storage in ((32, 40, "flat"), (32, 200, "flat"), (32, 200, "sq8")):
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        if storage == "flat":
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        wrapped = faiss.IndexIDMap2(index)
        wrapped.train(data)
        wrapped.add_with_ids(data, ids)
        build = time.perf_counter() - t0
        mem = rss_mb() - before
        store = ChunkFaissStore(wrapped)
        size = index_mb(wrapped)
        name = f"HNSW{m}{'' if storage == 'flat' else ',SQ8'} efConstruction={efc}"
        log(f"{name} at {n} built in {build:.0f} s ({n / build:.0f} vectors/s)")
        for ef in (64, 128, 256):
            store._ef_search = ef
            times, got = time_queries(store.search, queries, 10)
            r = recall_at_10(got, exact)
            rows.append(_row(name, build, mem, size, f"efSearch {ef}", times, r, n))
            log(f"  efSearch {ef}: p50 {pct(times, 50):.2f} ms, recall@10 {r:.3f}")
        del store, wrapped
    return rows


# --- how hard is the synthetic data? ---------------------------------------------------------------


def realism(index_files: list[Path], centre_weights: list[float], log: Any) -> list[dict[str, Any]]:
    """Real embeddings (saved lorebase indexes) against the generator and uniform random vectors at
    the same size: local intrinsic dimensionality (MLE over 20 neighbours; Levina and Bickel 2004,
    the difficulty measure of Aumueller and Ceccarello 2019), and recall@10 of IVF and HNSW."""
    import faiss

    parts = []
    for f in index_files:
        index = faiss.read_index(str(f))
        ids = faiss.vector_to_array(index.id_map) if hasattr(index, "id_map") else None
        parts.append(np.asarray(index.reconstruct_batch(ids), dtype=np.float32) if ids is not None else index.reconstruct_n(0, index.ntotal))
    real = np.concatenate(parts)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    n, dim = real.shape
    sets = {"real (all-MiniLM-L6-v2 chunks)": real}
    for w in centre_weights:
        sets[f"synthetic, centre weight {w}"] = synthetic(n, dim, 1, w)
    uniform = np.random.default_rng(5).standard_normal((n, dim)).astype(np.float32)
    sets["uniform on the sphere"] = uniform / np.linalg.norm(uniform, axis=1, keepdims=True)
    rows = []
    for name, x in sets.items():
        pick = np.random.default_rng(9).choice(n, 500, replace=False)
        base, q = np.delete(x, pick, axis=0), x[pick]
        exact = faiss.IndexFlatIP(dim)
        exact.add(base)
        sims, nn = exact.search(q, 21)
        dist = np.sqrt(np.clip(2 - 2 * sims[:, :20], 1e-12, None))
        lid = -1 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)
        row: dict[str, Any] = {"data": name, "n": len(base), "lid": float(np.median(lid)), "top1": float(sims[:, 0].mean())}
        ivf = faiss.index_factory(dim, "IVF256,Flat", faiss.METRIC_INNER_PRODUCT)
        ivf.train(base)
        ivf.add(base)
        for p in (4, 16):
            ivf.nprobe = p
            row[f"ivf{p}"] = recall_at_10(ivf.search(q, 10)[1].tolist(), nn[:, :10].tolist())
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(base)
        hnsw.hnsw.efSearch = 32
        row["hnsw32"] = recall_at_10(hnsw.search(q, 10)[1].tolist(), nn[:, :10].tolist())
        rows.append(row)
        log(f"{name}: LID {row['lid']:.1f}, IVF256 nprobe 4/16 {row['ivf4']:.3f}/{row['ivf16']:.3f}, HNSW ef32 {row['hnsw32']:.3f}")
    return rows


# --- report ---------------------------------------------------------------------------------------


def render(
    info: dict[str, str], e2e: dict[str, Any] | None, faiss_rows: list[dict[str, Any]] | None, n: int, dim: int,
    centre_weight: float, real_rows: list[dict[str, Any]] | None,
) -> str:  # fmt: skip
    lines = [
        "# Retrieval benchmark",
        "",
        f"Machine: {info['cpu']}, nproc {info['nproc']} (torch threads {info['torch_threads']}, faiss threads "
        f"{info['faiss_threads']} for builds, 1 per query), Python {info['python']}, {info['date']}.",
        f"Load average (1, 5, 15 min) at the start: {info['load']}; at the end: {'{:.1f}, {:.1f}, {:.1f}'.format(*os.getloadavg())}.",
        "",
    ]
    if e2e:
        lines += [
            f"## End to end at {e2e['chunks']:,} chunks "
            f"(SearchService.retrieve, k=10, {e2e['queries']} queries: {e2e.get('query_kind', 'half identifiers, half prose')})",
            "",
            f"Embedder {e2e['embedder']}. "
            + (f"Embedding and indexing the corpus: {e2e['embed_s']:.1f} s ({e2e['embed_rate']:.0f} chunks/s); "
               if e2e["embed_s"] == e2e["embed_s"] else f"Data home {e2e.get('home')} (already indexed); ")
            + f"BM25 build {e2e['bm25_s']:.2f} s (median of {e2e.get('bm25_builds', 1)}); process RSS {e2e['rss_mb']:.0f} MB.",
            "",
            "| mode | p50 ms | p95 ms | target |",
            "|---|---:|---:|---|",
        ]
        for mode, (p50, p95) in e2e["rows"].items():
            target = "p50 < 50 ms" if mode == "hybrid" else ""
            lines.append(f"| {mode} | {p50:.1f} | {p95:.1f} | {target} |")
        lines.append("")
    if real_rows:
        lines += [
            f"## How hard is the synthetic data? (all at {real_rows[0]['n']:,} vectors, 500 queries)",
            "",
            "| data | LID (median) | mean top-1 cosine | IVF256 recall@10 nprobe 4 / 16 | HNSW32 recall@10 efSearch 32 |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in real_rows:
            lines.append(f"| {r['data']} | {r['lid']:.1f} | {r['top1']:.3f} | {r['ivf4']:.3f} / {r['ivf16']:.3f} | {r['hnsw32']:.3f} |")
        lines.append("")
    if faiss_rows:
        lines += [
            f"## FAISS alone, dim {dim} (clustered synthetic unit vectors, centre weight {centre_weight}; one query at a time, one thread)",
            "",
            "| index | vectors | build s | index MB | RSS growth MB | setting | p50 ms | p95 ms | recall@10 vs exact | load |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for r in faiss_rows:
            cells = [r["index"], f"{r['vectors']:,}", f"{r['build_s']:.1f}", f"{r['size_mb']:.0f}", f"{r['mem_mb']:.0f}", str(r["setting"])]
            cells += [f"{r['p50']:.2f}", f"{r['p95']:.2f}", f"{r['recall']:.3f}", f"{r['load']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Targets: p50 < 5 ms with recall@10 >= 0.9 at {n:,} vectors. HNSW rows are at their own (smaller) size."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write the markdown table here")
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--vectors", type=int, default=1_000_000)
    p.add_argument("--faiss-queries", type=int, default=300)
    p.add_argument("--centre-weight", type=float, default=0.6, help="cluster separation of the synthetic vectors (higher: easier)")
    p.add_argument("--probe-shares", type=float, nargs="*", default=[1 / 32, 1 / 16, 1 / 8, 1 / 4], help="IVF-PQ sweep (none: skip)")
    p.add_argument("--ivf-flat-shares", type=float, nargs="*", default=[1 / 256, 1 / 64, 1 / 32, 1 / 16], help="IVF-Flat sweep (none: skip)")
    p.add_argument("--hnsw-vectors", type=int, default=50_000, help="size for the HNSW rows (0: none)")
    p.add_argument("--real-index", type=Path, nargs="*", default=[], help="saved dense-*.faiss files of real corpora: compare difficulty")
    p.add_argument("--threads", type=int, default=min(2, len(os.sched_getaffinity(0))), help="FAISS threads for builds")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument("--skip-faiss", action="store_true")
    p.add_argument("--home", type=Path, help="end to end on this data home's own store and index (nothing written)")
    p.add_argument("--questions", type=Path, nargs="*", default=[], help="with --home: JSONL files whose 'question' fields are the queries")
    p.add_argument("--bm25-builds", type=int, default=1, help="build the BM25 index this many times and report the median")
    args = p.parse_args(argv)

    if args.home and not args.questions:
        p.error("--home needs --questions FILE ... (e.g. datasets/eval/sweqa-dev.jsonl datasets/eval/qmsum-dev.jsonl)")

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] load {os.getloadavg()[0]:.1f} {msg}", file=sys.stderr, flush=True)

    import faiss

    faiss.omp_set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = machine()
    real_rows = realism(args.real_index, [args.centre_weight, 1.0], log) if args.real_index else None
    e2e = None if args.skip_e2e else bench_end_to_end(args.chunks, args.queries, log, args.home, args.questions, args.bm25_builds)
    rows = None
    if not args.skip_faiss:
        rows = bench_faiss(
            args.vectors, 384, args.faiss_queries, args.centre_weight, args.probe_shares, args.ivf_flat_shares,
            args.hnsw_vectors, log,
        )  # fmt: skip
    report = render(info, e2e, rows, args.vectors, 384, args.centre_weight, real_rows)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
