"""Choosing hybrid's file-level and symbol-level weights on the SWE-QA dev repositories, honestly.

Runs each code question of ``datasets/eval/sweqa-dev.jsonl`` through the real retrievers of the
public data home (``.evaldata/home``, built by ``lorebase eval retrieval``) once, keeps every
score fusion needs (``SearchService.fusion_inputs``), then ranks with the real ``fuse`` for a grid
of weights, scoring file hit@1, hit@5 and MRR@10 exactly as ``lorebase eval retrieval`` does
(overlapping chunks dropped, each file at the rank of its best chunk).

Weights are chosen by leave-one-repository-out: for each repository, the grid point best on the
*others* (mean of hit@1 and MRR, each repository weighted by its questions; before 2026-12-07 each
repository counted the same, which the four dev repositories of about 47 questions each barely tell
apart) is scored on it; of points tied
there, the one nearest the current default. Those held-out figures are the estimate to trust; the
default is then the point best on all of them.

    nice -n 10 .venv/bin/python bench/bench_code_fusion.py [--bm25-names] [--dense-weights 0.3,0.4,0.5]
        [--path-weights 0,0.1,0.2] [--json FILE]

``--questions datasets/eval/sweqa-holdout.jsonl --home home-holdout`` scores the held-out
repositories instead (no setting is chosen there: their "current default" row is the estimate for a
new repository, and their best grid point only says how far a choice made elsewhere is from the best).

``--set HOME=QUESTIONS`` (repeatable) chooses on the repositories of several homes at once, e.g. the
dev home and the tuning one (streamlink, reflex; ``lorebase eval retrieval`` ingests it):
``--set home=datasets/eval/sweqa-dev.jsonl --set home-tuning=datasets/eval/sweqa-tuning.jsonl``.
``--report HOME=QUESTIONS`` (repeatable) scores more repositories without choosing on them: the
held-out ones, at the current default, at plain fusion, at the point chosen on the ``--set``
repositories and at their own best point (an oracle), in ``report["reported"]``.

``--bm25-names`` also indexes each chunk's qualified symbol and class line in its BM25 text
(identifier-aware chunk BM25), to compare with the separate symbol-level score.

``--names-dense names`` (or ``doc``) replaces the path-level score by another signal to weigh with
``--path-weights``: the cosine between the question and each code chunk's names embedded alone
(path, qualified symbol and class, identifiers split into words; ``doc`` adds the first paragraph
of the definition's docstring). The chunk's own vector sees its names under its body's words; this
asks whether a names-only vector matches a question that describes code without naming it.

``--test-biases -0.05,-0.1`` tries a prior against test files: a code chunk under ``test/``,
``tests/`` or ``testing/``, or in ``test_*.py``, ``*_test.py`` or ``conftest.py``, gets the bias of
a kind ``test`` (in memory only; lorebase has no such kind), one value at a time from the default
and in the grid; for every question alike (tried 2026-12-05, not adopted; run it with
``LOREBASE_RETRIEVAL__TEST_BIAS=0`` to see it alone).

``--test-bias-values 0,-0.3`` grids over `retrieval.test_bias`, lorebase's own prior against test
files: the same files, biased only for a question that does not ask about tests
(``lorebase/index/test_files.py``); also one value at a time from the default.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return bool(re.search(r"(^|/)(tests?|testing)/", path)) or name.startswith("test_") or name.endswith("_test.py") \
        or name == "conftest.py"


def name_words(name: str) -> str:
    """``sphinx/domains/cpp/_ast.py`` -> "sphinx domains cpp ast py"; ``ASTParenAttr`` -> "AST Paren Attr"."""
    out: list[str] = []
    for piece in re.split(r"[._\-/]+", name):
        out += re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", piece)
    return " ".join(out)


def names_text(path: str, meta: dict[str, Any] | None, text: str, with_doc: bool) -> str:
    """A code chunk's names as words: its path; for a definition its qualified symbol and class too,
    with ``with_doc`` the first paragraph of its docstring."""
    meta = meta or {}
    parts = [name_words(path)]
    if meta.get("symbol") and meta.get("symbol_kind") != "module":
        parts.append(name_words(str(meta["symbol"])))
        if meta.get("context"):
            parts.append(name_words(str(meta["context"]).replace("class ", "")))
        doc = re.search(r'"""\s*(.+?)(?:\n\s*\n|""")', text, re.S) if with_doc else None
        if doc:
            parts.append(" ".join(doc.group(1).split())[:300])
    return ". ".join(p for p in parts if p)


def embedded_names(store: Any, embedder: Any, mode: str) -> dict[int, Any]:
    """Each code chunk's ``names_text`` embedded: chunk id -> unit vector."""
    from sqlalchemy import select

    from lorebase.store.models import Chunk, Source

    with store.session() as s:
        rows = s.execute(select(Chunk.id, Chunk.text, Chunk.meta, Source.path).join(Source)
                         .where(Source.kind == "code").order_by(Chunk.id)).all()
    vecs = embedder.embed([names_text(r[3] or "", r[2], r[1], mode == "doc") for r in rows])
    return {int(r[0]): v for r, v in zip(rows, vecs, strict=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--questions", type=Path, default=ROOT / "datasets/eval/sweqa-dev.jsonl")
    ap.add_argument("--home", default="home", help="the data home under --evaldata (home-holdout: the held-out repositories)")
    ap.add_argument("--set", action="append", default=[], metavar="HOME=QUESTIONS",
                    help="choose on these homes' questions (repeatable; default: --home with --questions)")
    ap.add_argument("--report", action="append", default=[], metavar="HOME=QUESTIONS",
                    help="also score these homes' questions, never choosing on them (repeatable)")
    ap.add_argument("--bm25-names", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--path-weights", default="0", metavar="W,W,...", help="grid over these path-level BM25 weights (default 0)")
    ap.add_argument("--names-dense", choices=("names", "doc"), help="the path score becomes a names-only cosine (see above)")
    ap.add_argument("--test-biases", default="", metavar="B,B,...", help="also try these biases for test files (see above)")
    ap.add_argument("--test-bias-values", default="", metavar="B,B,...",
                    help="grid over these values of retrieval.test_bias (default: only the configured one)")
    ap.add_argument("--definition-weights", default="0,0.25,0.5,1", metavar="W,W,...",
                    help="grid over these weights of the chunks defining a name the question writes as code")
    ap.add_argument("--dense-weights", default="", metavar="W,W,...",
                    help="also grid over these hybrid dense weights (default: only the configured one)")
    args = ap.parse_args(argv)

    from lorebase.eval.public_sets import public_settings
    from lorebase.index.bm25 import Bm25Index, symbol_text
    from lorebase.index.filters import allowed_chunk_ids, parse_filters
    from lorebase.index.search import (
        FusionInputs,
        Hit,
        SearchService,
        drop_overlaps,
        fuse,
    )
    from lorebase.index.texts import indexed_text
    from lorebase.settings import load_settings
    from lorebase.store import Store

    test_biases = [float(x) for x in args.test_biases.split(",") if x.strip()]
    t0 = time.monotonic()

    def load(home: str, questions: Path) -> list[tuple[dict[str, Any], FusionInputs, dict[int, Hit]]]:
        """Each question of ``questions`` through the real retrievers of ``home``, once: what fusion needs."""
        settings = public_settings(load_settings(), args.evaldata, 200, home=home)
        store = Store(settings.db_url)
        bm25 = None
        if args.bm25_names:
            class NamedBm25(Bm25Index):
                @staticmethod
                def _chunk_text(row: Any) -> str:
                    return indexed_text(row[2], row[1]) + "\n" + symbol_text(row[4], None, row[5])

            bm25 = NamedBm25(store, settings.index.bm25_stemmer)
        svc = SearchService(settings, store, bm25=bm25)
        svc.warm()
        names = embedded_names(store, svc.embedder, args.names_dense) if args.names_dense else {}
        print(f"{home}: warm {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        everything = settings.retrieval.model_copy(update={"file_weight": 1.0, "file_dense_weight": 1.0, "symbol_weight": 1.0,
                                                           "path_weight": 1.0, "definition_weight": 1.0,
                                                           "kind_bias": {"commit": -0.1}, "test_bias": -1.0})
        rows = [json.loads(x) for x in questions.read_text().splitlines() if x.strip()]
        out: list[tuple[dict[str, Any], FusionInputs, dict[int, Hit]]] = []
        n = settings.retrieval.candidates
        try:
            for q in rows:
                allowed = allowed_chunk_ids(store, parse_filters({"repo": q["repo"]}))
                if allowed is not None and len(allowed) == 0:
                    raise SystemExit(f"{home} holds no chunk of {q['repo']}; ingest it first (lorebase eval retrieval)")
                vec = svc.embedder.embed_query(q["question"])
                dense = svc._dense_search(vec, n, allowed)
                defs = svc.bm25.definitions(q["question"], allowed)
                b, b_of_dense = svc.bm25.search_scoring(q["question"], n, allowed, also=[i for i, _ in dense] + list(defs))
                inputs = svc.fusion_inputs(q["question"], vec, dense, b, b_of_dense, everything, defs)
                hits = {h.chunk_id: h for h in svc._load([(i, 0.0) for i in dict.fromkeys(inputs.candidates)])}
                if args.names_dense:
                    inputs.paths = {i: float(names[i] @ vec) for i in inputs.candidates if i in names}
                if test_biases:
                    for i, h in hits.items():
                        if inputs.kinds.get(i) == "code" and is_test_file(h.source.path or ""):
                            inputs.kinds[i] = "test"
                out.append((q, inputs, hits))
        finally:
            store.close()
        print(f"{home}: inputs for {len(out)} questions {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        return out

    def parse_set(text: str) -> tuple[str, Path]:
        home, sep, questions = text.partition("=")
        if not sep or not home or not questions:
            raise SystemExit(f"--set/--report takes HOME=QUESTIONS, not {text!r}")
        return home, Path(questions)

    choose_on = [parse_set(x) for x in args.set] or [(args.home, args.questions)]
    cached = [c for home, questions in choose_on for c in load(home, questions)]
    reported_cached = [c for x in args.report for c in load(*parse_set(x))]
    settings = public_settings(load_settings(), args.evaldata, 200, home=choose_on[0][0])

    def score(r: Any, only: str | None = None, mode: str = "hybrid", on: list[Any] | None = None) -> dict[str, dict[str, float]]:
        per: dict[str, list[tuple[float, float, float]]] = {}
        for q, inputs, hits in cached if on is None else on:
            if only and q["repo"] != only:
                continue
            if mode == "bm25":
                ranked = sorted(hits, key=lambda i: -inputs.bm25.get(i, 0.0))
            elif mode == "dense":
                ranked = sorted(hits, key=lambda i: -inputs.dense.get(i, -1.0))
            else:
                ranked = [i for i, _ in fuse(inputs, r)]
            kept = drop_overlaps([hits[i] for i in ranked if i in hits])
            files: list[str] = []
            for h in kept:
                if h.source.id not in files:
                    files.append(h.source.id)
            paths = {h.source.id: h.source.path for h in kept}
            rel = [paths[f] in q["gold_files"] for f in files[:10]]
            first = next((k for k, x in enumerate(rel) if x), None)
            per.setdefault(q["repo"], []).append((float(rel[:1] == [True]), float(any(rel[:5])),
                                                  1.0 / (first + 1) if first is not None else 0.0))
        return {repo: {"n": len(v), "hit@1": float(np.mean([x[0] for x in v])), "hit@5": float(np.mean([x[1] for x in v])),
                       "mrr": float(np.mean([x[2] for x in v]))} for repo, v in per.items()}

    def objective(s: dict[str, dict[str, float]], repos: list[str]) -> float:
        """Mean of hit@1 and MRR, each repository weighted by its questions: one with few questions whose
        answer names a file (streamlink: 2) counts for what it has, not as much as one with 48."""
        n = sum(s[r]["n"] for r in repos)
        return float(sum(s[r]["n"] * (s[r]["hit@1"] + s[r]["mrr"]) / 2 for r in repos) / n)

    base = settings.retrieval
    grid = []
    biases = [{}, {"commit": -0.3, "doc": -0.2}, {"commit": -0.5, "doc": -0.3}, {"commit": -0.3, "doc": -0.1}]
    biases += [{"commit": -0.5, "doc": -0.3, "test": t} for t in test_biases]
    dense_weights = [float(x) for x in args.dense_weights.split(",") if x.strip()] or [base.dense_weight]
    path_weights = [float(x) for x in args.path_weights.split(",") if x.strip()] or [0.0]
    definition_weights = [float(x) for x in args.definition_weights.split(",") if x.strip()] or [0.0]
    test_bias_values = [float(x) for x in args.test_bias_values.split(",") if x.strip()] or [base.test_bias]
    for dw, pw, fw, fdw, sw, kb, dfw, tb in itertools.product(dense_weights, path_weights, (0.0, 0.15, 0.3, 0.5, 0.8), (0.0, 0.1, 0.2, 0.4),
                                                              (0.0, 0.1, 0.2, 0.3, 0.5, 0.8), range(len(biases)), definition_weights,
                                                              test_bias_values):
        grid.append(base.model_copy(update={"dense_weight": dw, "path_weight": pw, "file_weight": fw, "file_dense_weight": fdw,
                                            "symbol_weight": sw, "kind_bias": biases[kb], "definition_weight": dfw,
                                            "test_bias": tb}))
    repos = sorted({q["repo"] for q, _, _ in cached})
    results = [score(r) for r in grid]
    print(f"grid of {len(grid)} scored {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    def label(r: Any) -> dict[str, Any]:
        return {"dense_weight": r.dense_weight, "path_weight": r.path_weight, "file_weight": r.file_weight, "file_dense_weight": r.file_dense_weight,
                "symbol_weight": r.symbol_weight, "kind_bias": r.kind_bias, "definition_weight": r.definition_weight,
                "test_bias": r.test_bias}

    report: dict[str, Any] = {"bm25_names": args.bm25_names, "names_dense": args.names_dense, "grid": len(grid), "chosen_on": [f"{h}={q}" for h, q in choose_on],
                              "bm25": score(base, mode="bm25"), "dense": score(base, mode="dense"),
                              "plain convex": score(base.model_copy(update={"file_weight": 0.0, "file_dense_weight": 0.0,
                                                                            "symbol_weight": 0.0, "definition_weight": 0.0,
                                                                            "kind_bias": {}, "test_bias": 0.0})),
                              "current default": score(base), "held_out": {}}
    def from_default(r: Any) -> tuple[int, float]:
        """How far a grid point is from the current default: weights changed, then by how much."""
        a, b = label(r), label(base)
        changed = [k for k in a if a[k] != b[k]]
        size = sum(abs(a[k] - b[k]) for k in changed if k != "kind_bias")
        return len(changed), size + sum(abs(a["kind_bias"].get(k, 0.0) - b["kind_bias"].get(k, 0.0))
                                        for k in set(a["kind_bias"]) | set(b["kind_bias"]))

    def chosen(on: list[str]) -> int:
        """The grid point best on the repositories ``on``; of tied points, the one nearest the current
        default, so a fold does not wander between equally good settings from run to run."""
        top = max(objective(x, on) for x in results)
        return min((i for i in range(len(grid)) if objective(results[i], on) >= top - 1e-12),
                   key=lambda i: from_default(grid[i]))

    for held in repos:
        train = [r for r in repos if r != held]
        best = chosen(train)
        report["held_out"][held] = {"chosen_on_others": label(grid[best]), "train": {r: results[best][r] for r in train},
                                    "held_out": results[best][held]}
    best = chosen(repos)
    report["best_on_all"] = {"weights": label(grid[best]), "scores": results[best]}
    if reported_cached:
        mine = [score(r, on=reported_cached) for r in grid]
        names = sorted({q["repo"] for q, _, _ in reported_cached})
        oracle = max(range(len(grid)), key=lambda i: objective(mine[i], names))
        plain = base.model_copy(update={"file_weight": 0.0, "file_dense_weight": 0.0, "symbol_weight": 0.0,
                                        "definition_weight": 0.0, "kind_bias": {}, "test_bias": 0.0})
        report["reported"] = {"sets": args.report, "current default": score(base, on=reported_cached),
                              "plain convex": score(plain, on=reported_cached),
                              "chosen on the --set repositories": mine[best],
                              "oracle": {"weights": label(grid[oracle]), "scores": mine[oracle]}}
    # One weight at a time from the current default: what each prior is worth on its own.
    report["one_at_a_time"] = []
    for key, values in (("symbol_weight", (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)), ("file_weight", (0.0, 0.15, 0.3, 0.5, 0.8)),
                        ("file_dense_weight", (0.0, 0.1, 0.2, 0.4)), ("path_weight", (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)),
                        ("definition_weight", (0.0, 0.1, 0.25, 0.5, 1.0)),
                        ("test_bias", tuple(dict.fromkeys((0.0, *test_bias_values))))):
        for v in values:
            r = base.model_copy(update={key: v})
            report["one_at_a_time"].append({key: v, "scores": score(r)})
    for t in [0.0, *test_biases] if test_biases else []:
        r = base.model_copy(update={"kind_bias": {**base.kind_bias, "test": t}})
        report["one_at_a_time"].append({"test_kind_bias": t, "scores": score(r)})
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
