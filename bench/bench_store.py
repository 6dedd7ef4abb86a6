"""The store on SQLite against PostgreSQL, side by side: ingest and search throughput, and how long
a replica takes to catch up after 10,000 chunk changes made elsewhere.

    .venv/bin/python bench/bench_store.py --chunks 10000 --changes 10000 --out /tmp/bench_store.md

Each database gets the same synthetic corpus (bench_retrieval's generator: code, docs, issues,
lectures, commits, 2-5 chunks per source). PostgreSQL is a throwaway 15 cluster started here on
loopback (tests/pg_server.py) with its durable defaults (fsync, synchronous commit on); SQLite runs
as lorebase runs it (WAL, synchronous=NORMAL). Measured, in this order, per database:

1. ingest: every source written through ``IngestService.upsert`` (one transaction each: source row,
   chunks, change-log triggers), as an ingest does before the index sync;
2. search: ``SearchService.search`` for 200 queries (half identifiers, half prose), in bm25 and hybrid
   mode, and hybrid with a kind filter; the modes take turns query by query;
3. replica catch-up: a replica synced to the corpus, then sources re-ingested with new text until
   at least ``--changes`` chunk changes (half removes, half adds) are in the log; the replica's
   ``IndexSyncer.sync`` is timed (log read and plan, embedding, FAISS apply and save, commit), and
   a cold rebuild of the same store beside it.

Embedding is the one cost both databases share and it dwarfs the rest on 2 CPU cores (the real
embedder manages a few dozen chunks a second under load), so steps 2-3 embed with a stand-in: a
feature-hashing embedder of the same dimension (384) that costs almost nothing. The report gives
the real embedder's rate, measured on a sample at the start, and what catching up would take with
it. Load averages are recorded beside each step: the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: lorebase and tests.pg_server

from bench_retrieval import KINDS, TOPICS, pct, prose_queries, synthetic_chunk  # noqa: E402
from machine import cpu_name  # noqa: E402

from lorebase.index.search import SearchService  # noqa: E402
from lorebase.index.sync import IndexSyncer  # noqa: E402
from lorebase.ingest.records import ChunkDraft, SourceDraft  # noqa: E402
from lorebase.ingest.service import IngestService  # noqa: E402
from lorebase.settings import Settings, load_settings  # noqa: E402
from lorebase.store import Store  # noqa: E402
from lorebase.store.change_log import last_seq  # noqa: E402
from lorebase.store.models import SourceKind  # noqa: E402

TOKEN = re.compile(r"[A-Za-z0-9_]+")


class HashingEmbedder:
    """Unit vectors from hashed word counts: same shape as the real embedder, near-zero cost."""

    model_name = "bench-hashing-384"
    dtype = "float32"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0 if h & (1 << 31) else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-6)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


@dataclass
class Corpus:
    drafts: list[SourceDraft]
    idents: list[str]


def make_corpus(n_chunks: int, seed: int = 7) -> Corpus:
    rng = random.Random(seed)
    drafts: list[SourceDraft] = []
    idents: list[str] = []
    made = 0
    while made < n_chunks:
        kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        topic = rng.choice(list(TOPICS))
        per = 1 if kind == "commit" else min(rng.randint(2, 5), n_chunks - made)
        texts = [synthetic_chunk(rng, kind, topic) for _ in range(per)]
        idents.extend(i for _, i in texts)
        n = len(drafts)
        drafts.append(SourceDraft(
            key=f"{kind}:bench/repo:{topic}/{n}", kind=SourceKind(kind), title=f"{topic} {kind} {n}",
            text="\n".join(t for t, _ in texts), repo="bench/repo",
            path=f"src/{topic}/{n}.py" if kind in ("code", "doc") else None,
            lecture=f"lecture-{topic}" if kind == "transcript" else None,
            chunks=[ChunkDraft(text=t, start_line=10 * i + 1, end_line=10 * i + 10) for i, (t, _) in enumerate(texts)],
        ))
        made += per
    return Corpus(drafts, idents)


def revised(draft: SourceDraft, rng: random.Random) -> SourceDraft:
    """The same source with new text in every chunk (an edited file): its chunks are replaced."""
    topic = draft.key.split(":")[-1].split("/")[0]
    kind = draft.kind.value
    chunks = [ChunkDraft(text=synthetic_chunk(rng, kind, topic)[0], start_line=c.start_line, end_line=c.end_line)
              for c in draft.chunks]
    return SourceDraft(key=draft.key, kind=draft.kind, title=draft.title, text="\n".join(c.text for c in chunks),
                       repo=draft.repo, path=draft.path, lecture=draft.lecture, chunks=chunks)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def real_embed_rate(sample: list[str]) -> tuple[float, str]:
    from lorebase.index.embeddings import LorebaseEmbedding

    emb = LorebaseEmbedding.from_settings(load_settings(home=Path(tempfile.mkdtemp(prefix="bench-store-emb-"))))
    emb.embed(sample[:32])  # warm-up
    t0 = time.perf_counter()
    emb.embed(sample)
    return len(sample) / (time.perf_counter() - t0), f"{emb.model_name} ({emb.dtype})"


def home_settings(root: Path, name: str, db_url: str) -> Settings:
    s = load_settings(home=root / name, database_url=db_url)
    s.ensure_home()
    return s


def bench_one(db: str, db_url: str, corpus: Corpus, changes: int, n_queries: int, log: Any) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-store-{db}-"))
    settings = home_settings(root, "writer", db_url)
    store = Store(db_url)
    out: dict[str, Any] = {"db": db}
    embedder = HashingEmbedder()

    # 1. ingest: store writes only (the index sync comes after, per replica)
    ingest = IngestService(settings, store, index=None, progress=False)
    out["load_ingest"] = load()
    t0 = time.perf_counter()
    chunks = 0
    for d in corpus.drafts:
        _, added, _ = ingest.upsert(d)
        chunks += added
    out["ingest_s"] = time.perf_counter() - t0
    out["sources"], out["chunks"] = len(corpus.drafts), chunks
    t0 = time.perf_counter()
    for d in corpus.drafts:
        ingest.upsert(d)  # unchanged: a content-hash comparison each
    out["unchanged_s"] = time.perf_counter() - t0
    log(f"{db}: ingest {len(corpus.drafts)} sources / {chunks} chunks in {out['ingest_s']:.1f} s; "
        f"unchanged {out['unchanged_s']:.1f} s (load {load()})")

    # the serving replica: its own home and index, synced to the corpus
    replica = IndexSyncer(home_settings(root, "replica", db_url), store, embedder, progress=False)  # type: ignore[arg-type]
    replica.open()
    replica.sync()

    # 2. search
    search = SearchService(replica.settings, store, embedder=embedder, dense=replica.dense)  # type: ignore[arg-type]
    search.bm25.refresh()
    rng = random.Random(11)
    queries = [q for pair in zip(rng.sample(corpus.idents, n_queries // 2), prose_queries(rng, n_queries // 2), strict=True)
               for q in pair]
    for q in queries[:10]:
        search.search(q, k=10)
    steps = {
        "bm25": lambda q: search.search(q, k=10, mode="bm25"),
        "hybrid": lambda q: search.search(q, k=10, mode="hybrid"),
        "hybrid, kind filter": lambda q: search.search(q, k=10, mode="hybrid", filters={"kind": ["code", "doc"]}),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    out["load_search"] = load()
    for q in queries:
        for name, step in steps.items():
            t = time.perf_counter()
            step(q)
            times[name].append(time.perf_counter() - t)
    out["search"] = {k: (pct([x * 1000 for x in v], 50), pct([x * 1000 for x in v], 95), len(v) / sum(v)) for k, v in times.items()}
    log(f"{db}: search " + "; ".join(f"{k} p50 {v[0]:.1f} ms, {v[2]:.0f} q/s" for k, v in out["search"].items()))

    # 3. replica catch-up after `changes` chunk changes made by another writer
    with store.session() as s:
        start = last_seq(s)
    rng = random.Random(5)
    edited = 0
    out["load_changes"] = load()
    t0 = time.perf_counter()
    for d in rng.sample(corpus.drafts, len(corpus.drafts)):
        with store.session() as s:
            if last_seq(s) - start >= changes:
                break
        ingest.upsert(revised(d, rng))
        edited += 1
    out["changes_write_s"] = time.perf_counter() - t0
    with store.session() as s:
        out["changes"] = last_seq(s) - start
    out["edited_sources"] = edited

    timings: dict[str, float] = {"plan": 0.0, "embed": 0.0, "apply": 0.0, "commit": 0.0}
    originals = {name: getattr(replica, name) for name in timings}

    def timed(name: str) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return originals[name](*a, **k)
            finally:
                timings[name] += time.perf_counter() - t
        return run

    for name in timings:
        setattr(replica, name, timed(name))
    out["load_catchup"] = load()
    t0 = time.perf_counter()
    r = replica.sync()
    out["catchup_s"] = time.perf_counter() - t0
    out["catchup_parts"] = dict(timings)
    out["catchup_added"], out["catchup_removed"] = r.added, r.removed
    for name, fn in originals.items():
        setattr(replica, name, fn)
    log(f"{db}: {out['changes']} changes ({edited} sources edited) applied by the replica in {out['catchup_s']:.2f} s "
        f"(+{r.added} -{r.removed}; " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()) + f"; load {load()})")

    cold = IndexSyncer(home_settings(root, "cold", db_url), store, embedder, progress=False)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    cold.rebuild()
    out["rebuild_s"] = time.perf_counter() - t0
    out["rebuild_vectors"] = cold.dense.count
    log(f"{db}: cold rebuild of {cold.dense.count} vectors in {out['rebuild_s']:.2f} s")
    store.close()
    return out


def render(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by = {r["db"]: r for r in results}
    sq, pg = by["sqlite"], by["postgresql"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    lines = [
        f"Machine: {meta['cpu']}, nproc {meta['nproc']}, Python {meta['python']}; {meta['started']} - {meta['finished']} UTC; "
        f"load average at start {meta['load_start']}, at end {meta['load_end']}.",
        f"Command: `{meta['command']}`. PostgreSQL {meta['pg_version']} on loopback, durable defaults; SQLite WAL, synchronous=NORMAL.",
        f"Corpus: {sq['sources']} sources, {sq['chunks']} chunks (synthetic, bench_retrieval's generator).",
        "",
        "| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |",
        "|---|---:|---:|---:|",
        f"| ingest, store writes (sources/s) | {sq['sources'] / sq['ingest_s']:.0f} | {pg['sources'] / pg['ingest_s']:.0f} | "
        f"{ratio(pg['sources'] / pg['ingest_s'], sq['sources'] / sq['ingest_s'])} |",
        f"| ingest, store writes (chunks/s) | {sq['chunks'] / sq['ingest_s']:.0f} | {pg['chunks'] / pg['ingest_s']:.0f} | "
        f"{ratio(pg['chunks'] / pg['ingest_s'], sq['chunks'] / sq['ingest_s'])} |",
        f"| unchanged re-ingest (sources/s) | {sq['sources'] / sq['unchanged_s']:.0f} | {pg['sources'] / pg['unchanged_s']:.0f} | "
        f"{ratio(pg['sources'] / pg['unchanged_s'], sq['sources'] / sq['unchanged_s'])} |",
    ]
    for mode in sq["search"]:
        a, b = sq["search"][mode], pg["search"][mode]
        lines.append(f"| search {mode}: p50 / p95 ms | {a[0]:.1f} / {a[1]:.1f} | {b[0]:.1f} / {b[1]:.1f} | {ratio(b[0], a[0])} (p50) |")
        lines.append(f"| search {mode}: queries/s, 1 client | {a[2]:.0f} | {b[2]:.0f} | {ratio(b[2], a[2])} |")
    lines += [
        f"| chunk changes written by the other replica (s) | {sq['changes_write_s']:.1f} | {pg['changes_write_s']:.1f} | "
        f"{ratio(pg['changes_write_s'], sq['changes_write_s'])} |",
        f"| **replica catch-up after {sq['changes']:,} / {pg['changes']:,} changes (s)** | {sq['catchup_s']:.2f} | {pg['catchup_s']:.2f} | "
        f"{ratio(pg['catchup_s'], sq['catchup_s'])} |",
    ]
    for part in ("plan", "embed", "apply", "commit"):
        lines.append(f"| - of which {part} (s) | {sq['catchup_parts'][part]:.2f} | {pg['catchup_parts'][part]:.2f} | "
                     f"{ratio(pg['catchup_parts'][part], sq['catchup_parts'][part])} |")
    lines += [
        f"| cold rebuild of the same store, {sq['rebuild_vectors']:,} vectors (s) | {sq['rebuild_s']:.2f} | {pg['rebuild_s']:.2f} | "
        f"{ratio(pg['rebuild_s'], sq['rebuild_s'])} |",
        "",
        "Loads (1/5/15 min) at each step: " + "; ".join(
            f"{r['db']}: ingest {r['load_ingest']}, search {r['load_search']}, changes {r['load_changes']}, catch-up {r['load_catchup']}"
            for r in results),
        "",
        f"Embedding: steps 2-3 used a feature-hashing stand-in (384 dims). The real embedder, {meta['embedder']}, embedded "
        f"{meta['embed_sample']} corpus chunks at {meta['embed_rate']:.1f} chunks/s at the start of this run: the "
        f"{sq['catchup_added']:,} chunks added in the catch-up would add about {sq['catchup_added'] / meta['embed_rate']:.0f} s "
        "to either database's figure.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=10_000, help="chunks in the corpus")
    ap.add_argument("--changes", type=int, default=10_000, help="chunk changes the replica catches up on")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embed-sample", type=int, default=256, help="chunks the real embedder's rate is measured on (0: skip)")
    ap.add_argument("--postgres-url", help="an existing, empty PostgreSQL database; default: a throwaway cluster started here")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)

    meta: dict[str, Any] = {
        "cpu": cpu_name(), "nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(),
        "started": f"{datetime.now(UTC):%Y-%m-%d %H:%M}", "load_start": load(),
        "command": "python bench/bench_store.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    corpus = make_corpus(args.chunks)
    log(f"corpus: {len(corpus.drafts)} sources, {sum(len(d.chunks) for d in corpus.drafts)} chunks")
    if args.embed_sample:
        sample = [c.text for d in corpus.drafts for c in d.chunks][: args.embed_sample]
        meta["embed_rate"], meta["embedder"] = real_embed_rate(sample)
        meta["embed_sample"] = len(sample)
        log(f"real embedder: {meta['embed_rate']:.1f} chunks/s (load {load()})")
    else:
        meta["embed_rate"], meta["embedder"], meta["embed_sample"] = float("nan"), "not measured", 0

    server = None
    try:
        pg_url = args.postgres_url
        if pg_url is None:
            from tests.pg_server import PostgresServer

            server = PostgresServer.start(durable=True)
            pg_url = server.create_database("bench")
        import psycopg

        from lorebase.store.locks import libpq_conninfo

        with psycopg.connect(libpq_conninfo(pg_url)) as c:
            meta["pg_version"] = c.execute("SHOW server_version").fetchone()[0]
        sqlite_url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-store-sqlite-')}/lorebase.db"
        results = [bench_one("sqlite", sqlite_url, corpus, args.changes, args.queries, log),
                   bench_one("postgresql", pg_url, corpus, args.changes, args.queries, log)]
    finally:
        if server is not None:
            server.stop()
    meta["finished"], meta["load_end"] = f"{datetime.now(UTC):%H:%M}", load()
    report = render(results, meta)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
