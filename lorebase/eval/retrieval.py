"""Retrieval evaluation: hit@1, hit@5, recall@k and MRR for bm25, dense and hybrid in one run.

Question file: JSONL (one object per line) or YAML (a list of the same objects, or a mapping
with a ``questions`` list). Each question:

    id:        optional name used in reports (default q1, q2, ... in file order)
    question:  the query text (required)
    kind:      optional bucket for the per-kind table (default: kind of its first gold source)
    filters:   optional search filters, as for `lorebase search` (kind, repo, path_prefix, ...)
    answer:    optional reference answer (used by `lorebase eval`, ignored here)
    category:  optional label such as "code.where" (ignored here)
    gold:      a non-empty list of relevant things, each a mapping of one of these shapes:
        {source_id: "src_..."}                         any chunk of that source
        {key: "code:owner/repo:src/m.py"}              any chunk of the source with that key
        {path: "src/m.py", repo: "owner/repo", lines: [10, 42]}
                                                       a code/doc file (repo optional); with lines,
                                                       only chunks overlapping that line range
        {issue: 12, repo: "owner/repo"}                an issue or pull request (repo optional)
        {commit: "abc1234"}                            a commit, by sha or a prefix of 7+ characters
        {lecture: "course/lecture-01", start: 95, end: "2:20"}
                                                       chunks of that lecture overlapping the time
                                                       range (seconds or m:ss / h:mm:ss; both optional)

Example JSONL line:
    {"id": "q7", "question": "Where are HTTP headers parsed?", "gold": [{"path": "src/parser.py", "lines": [1, 30]}]}

Scoring: a retrieved chunk is relevant when it belongs to any gold item. Per question, hit@n is
1 if a relevant chunk is in the top n; recall@k is the share of gold items with a chunk in the top
k; MRR is 1/rank of the first relevant chunk in the top k (0 if none). Averages are over scored
questions. Gold items that match nothing in the store are listed under ``unmatched_gold`` and left
out of recall; a question none of whose gold matches is listed as unscored, never silently
dropped. Malformed questions are listed under ``problems`` and the run goes on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import Select, select

from lorebase.errors import InvalidInput, LorebaseError
from lorebase.store.models import Chunk, Source

if TYPE_CHECKING:
    from lorebase.index.search import SearchService
    from lorebase.store import Store

MODES = ("bm25", "dense", "hybrid")
GOLD_SHAPES = ("source_id", "key", "path", "issue", "commit", "lecture")
_GOLD_EXTRAS = {"path": {"repo", "lines"}, "issue": {"repo"}, "lecture": {"start", "end"}}
_QUESTION_KEYS = {"id", "question", "kind", "filters", "gold", "answer", "category"}


@dataclass
class Question:
    id: str
    question: str
    gold: list[dict[str, Any]]
    kind: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None  # reference answer, for answer evaluation (lorebase eval)
    category: str | None = None  # e.g. "code.where"; reported, never scored on


@dataclass
class Metrics:
    n: int = 0
    hit1: float = 0.0
    hit5: float = 0.0
    recall: float = 0.0
    mrr: float = 0.0

    def add(self, hit1: float, hit5: float, recall: float, rr: float) -> None:
        self.n += 1
        self.hit1 += hit1
        self.hit5 += hit5
        self.recall += recall
        self.mrr += rr

    def means(self, k: int) -> dict[str, float | int]:
        d = max(self.n, 1)
        return {
            "n": self.n,
            "hit@1": round(self.hit1 / d, 4),
            "hit@5": round(self.hit5 / d, 4),
            f"recall@{k}": round(self.recall / d, 4),
            "mrr": round(self.mrr / d, 4),
        }


# --- reading ------------------------------------------------------------------------------------


def parse_seconds(value: Any) -> float:
    """Seconds from a number or "m:ss" / "h:mm:ss"."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\d+(:\d{1,2}){0,2}(\.\d+)?", value.strip()):
        total = 0.0
        for part in value.strip().split(":"):
            total = total * 60 + float(part)
        return total
    raise ValueError(f"not a time (seconds or m:ss): {value!r}")


def check_gold(item: Any) -> dict[str, Any]:
    """The gold item, normalised; ValueError saying what is wrong."""
    if not isinstance(item, dict):
        raise ValueError(f"gold items are mappings like {{'path': 'src/m.py'}}, got {item!r}")
    shapes = [k for k in GOLD_SHAPES if k in item]
    if len(shapes) != 1:
        raise ValueError(f"gold item {item!r} must have exactly one of: {', '.join(GOLD_SHAPES)}")
    shape = shapes[0]
    unknown = set(item) - {shape} - _GOLD_EXTRAS.get(shape, set())
    if unknown:
        allowed = sorted(_GOLD_EXTRAS.get(shape, set()))
        raise ValueError(f"gold item {item!r}: unknown field {sorted(unknown)[0]!r} for {shape!r} (allowed: {allowed or 'none'})")
    out = dict(item)
    if shape == "issue":
        out["issue"] = int(item["issue"])
    if shape == "commit":
        sha = str(item["commit"]).lower()
        if not re.fullmatch(r"[0-9a-f]{7,64}", sha):
            raise ValueError(f"commit {item['commit']!r} is not a sha or a prefix of at least 7 hex digits")
        out["commit"] = sha
    if shape == "path" and "lines" in item:
        lines = item["lines"]
        if not (isinstance(lines, list) and len(lines) == 2 and all(isinstance(x, int) for x in lines) and lines[0] <= lines[1]):
            raise ValueError(f"lines must be [first, last], got {lines!r}")
    if shape == "lecture":
        for key in ("start", "end"):
            if key in item:
                out[key] = parse_seconds(item[key])
    return out


def _raw_questions(path: Path) -> Iterable[tuple[str, Any]]:
    """(where, raw object) pairs; unreadable lines come back as (where, exception)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidInput(f"{path} is not valid YAML: {e}") from e
        if isinstance(data, dict):
            data = data.get("questions")
        if not isinstance(data, list):
            raise InvalidInput(f"{path} must hold a list of questions (or a mapping with a 'questions' list)")
        for i, obj in enumerate(data, start=1):
            yield f"item {i}", obj
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            yield f"line {n}", json.loads(line)
        except json.JSONDecodeError as e:
            yield f"line {n}", ValueError(f"not JSON: {e}")


def load_questions(path: Path) -> tuple[list[Question], list[dict[str, str]]]:
    """Questions from a JSONL or YAML file, and the problems found (one per bad question)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"question file {path} does not exist")
    questions: list[Question] = []
    problems: list[dict[str, str]] = []
    for i, (where, obj) in enumerate(_raw_questions(path), start=1):
        qid = obj.get("id") if isinstance(obj, dict) and obj.get("id") is not None else f"q{i}"
        try:
            if isinstance(obj, Exception):
                raise obj
            if not isinstance(obj, dict):
                raise ValueError("a question is a mapping with 'question' and 'gold'")
            unknown = set(obj) - _QUESTION_KEYS
            if unknown:
                raise ValueError(f"unknown field {sorted(unknown)[0]!r} (fields: {', '.join(sorted(_QUESTION_KEYS))})")
            text = obj.get("question")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("'question' must be a non-empty string")
            gold = obj.get("gold")
            if not isinstance(gold, list) or not gold:
                raise ValueError("'gold' must be a non-empty list")
            filters = obj.get("filters") or {}
            if not isinstance(filters, dict):
                raise ValueError("'filters' must be a mapping")
            answer = obj.get("answer")
            if answer is not None and not isinstance(answer, str):
                raise ValueError("'answer' must be a string")
            questions.append(Question(str(qid), text, [check_gold(g) for g in gold], obj.get("kind"), filters,
                                      answer, obj.get("category")))
        except (ValueError, TypeError) as e:
            problems.append({"question": str(qid), "where": where, "error": str(e)})
    return questions, problems


# --- matching gold to chunks --------------------------------------------------------------------


def gold_query(g: dict[str, Any]) -> Select[int, str]:
    """Chunk ids (with their source kind) that the gold item covers."""
    q = select(Chunk.id, Source.kind).join(Source, Chunk.source_id == Source.id)
    if "source_id" in g:
        return q.where(Source.id == g["source_id"])
    if "key" in g:
        return q.where(Source.key == g["key"])
    if "path" in g:
        q = q.where(Source.path == g["path"], Source.kind.in_(("code", "doc")))
        if g.get("repo"):
            q = q.where(Source.repo == g["repo"])
        if "lines" in g:
            first, last = g["lines"]
            q = q.where(Chunk.start_line <= last, Chunk.end_line >= first)
        return q
    if "issue" in g:
        q = q.where(Source.number == g["issue"], Source.kind.in_(("issue", "pull_request")))
        return q.where(Source.repo == g["repo"]) if g.get("repo") else q
    if "commit" in g:
        return q.where(Source.kind == "commit", Source.commit.startswith(g["commit"], autoescape=True))
    # A lecture is named by its lecture field or by its key without the "transcript:" prefix
    # ("intro-rag/<stem>", the folder and file it was ingested from).
    q = q.where(Source.kind == "transcript", (Source.lecture == g["lecture"]) | (Source.key == f"transcript:{g['lecture']}"))
    if "end" in g:
        q = q.where(Chunk.start_time < g["end"])
    if "start" in g:
        q = q.where(Chunk.end_time > g["start"])
    return q


def resolve_gold(store: Store, g: dict[str, Any]) -> tuple[set[int], str | None]:
    with store.session() as s:
        rows = s.execute(gold_query(g)).all()
    return {r[0] for r in rows}, (rows[0][1] if rows else None)


# --- running ------------------------------------------------------------------------------------


def score_ranking(ranked: list[int], gold_sets: list[set[int]], k: int) -> tuple[float, float, float, float]:
    """(hit@1, hit@5, recall@k, reciprocal rank) of one ranked list of chunk ids."""
    relevant = set().union(*gold_sets) if gold_sets else set()
    top = ranked[:k]
    first = next((r for r, cid in enumerate(top, start=1) if cid in relevant), None)
    hit1 = float(bool(ranked[:1]) and ranked[0] in relevant)
    hit5 = float(any(cid in relevant for cid in ranked[:5]))
    recall = sum(1 for g in gold_sets if g & set(top)) / len(gold_sets) if gold_sets else 0.0
    return hit1, hit5, recall, (1.0 / first if first else 0.0)


def evaluate(service: SearchService, store: Store, path: Path, k: int = 10, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """Run every question of the file through each mode; the report as plain data (see ``format_table``)."""
    questions, problems = load_questions(path)
    report = evaluate_questions(service, store, questions, k=k, modes=modes, problems=problems)
    report["file"] = str(path)
    report["questions"] += len(problems)
    return report


def evaluate_questions(
    service: SearchService, store: Store, questions: list[Question], k: int = 10, modes: tuple[str, ...] = MODES,
    problems: list[dict[str, str]] | None = None, distinct_sources: bool = False,
) -> dict[str, Any]:
    """Run ``questions`` through each mode. Besides the hit rates, ``span_s`` is the median length
    in seconds of the timed results in each top 5 (what a transcript citation covers).

    ``distinct_sources`` scores the ranking of sources instead of chunks (each source at the rank
    of its best chunk): file hit@n for code questions whose gold is whole files."""
    if not 1 <= k <= 100:
        raise InvalidInput(f"k must be from 1 to 100, got {k}")
    problems = list(problems or [])
    depth = max(k, 5)
    unmatched: list[dict[str, Any]] = []
    unscored: list[str] = []
    totals = {m: {"all": Metrics()} for m in modes}
    spans: dict[str, list[float]] = {m: [] for m in modes}
    for q in questions:
        gold_sets: list[set[int]] = []
        kind = q.kind
        for g in q.gold:
            ids, gold_kind = resolve_gold(store, g)
            if ids:
                gold_sets.append(ids)
                kind = kind or gold_kind
            else:
                unmatched.append({"question": q.id, "gold": g})
        if not gold_sets:
            unscored.append(q.id)
            continue
        bucket = kind or "unknown"
        for mode in modes:
            try:
                hits = service.retrieve(q.question, k=min(depth * (4 if distinct_sources else 1), 100),
                                        filters=q.filters or None, mode=mode)
            except LorebaseError as e:
                problems.append({"question": q.id, "where": mode, "error": str(e)})
                continue
            if distinct_sources:
                seen: set[str] = set()
                unique = []
                for h in hits:
                    if h.source.id not in seen:
                        seen.add(h.source.id)
                        unique.append(h)
                hits = unique[:depth]
            scores = score_ranking([h.chunk_id for h in hits], gold_sets, k)
            totals[mode]["all"].add(*scores)
            totals[mode].setdefault(bucket, Metrics()).add(*scores)
            spans[mode] += [h.chunk.end_time - h.chunk.start_time for h in hits[:5]
                            if h.chunk.start_time is not None and h.chunk.end_time is not None]
    return {
        "file": None,
        "k": k,
        "questions": len(questions),
        "scored": len(questions) - len(unscored),
        "modes": {
            m: {"overall": {**totals[m]["all"].means(k), **({"span_s": round(median(spans[m]), 1)} if spans[m] else {})},
                "by_kind": {b: v.means(k) for b, v in sorted(totals[m].items()) if b != "all"}}
            for m in modes
        },
        "unmatched_gold": unmatched,
        "unscored_questions": unscored,
        "problems": problems,
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a markdown table, with the unmatched gold and problems listed under it."""
    k = report["k"]
    cols = ["hit@1", "hit@5", f"recall@{k}", "mrr"]
    lines = [
        f"Retrieval eval: {report['file']} ({report['scored']} of {report['questions']} questions scored, k={k})",
        "",
        "| mode | kind | n | " + " | ".join(cols) + " |",
        "|---|---|---:|" + "---:|" * len(cols),
    ]
    for mode, data in report["modes"].items():
        rows = [("all", data["overall"]), *data["by_kind"].items()]
        for kind, m in rows:
            lines.append(f"| {mode} | {kind} | {m['n']} | " + " | ".join(f"{m[c]:.3f}" for c in cols) + " |")
    if report["unmatched_gold"]:
        lines += ["", f"Gold matching nothing in the store ({len(report['unmatched_gold'])}):"]
        lines += [f"- {u['question']}: {json.dumps(u['gold'])}" for u in report["unmatched_gold"]]
    if report["unscored_questions"]:
        lines += ["", "Unscored questions (no gold found in the store): " + ", ".join(report["unscored_questions"])]
    if report["problems"]:
        lines += ["", f"Problems ({len(report['problems'])}):"]
        lines += [f"- {p['question']} ({p['where']}): {p['error']}" for p in report["problems"]]
    return "\n".join(lines)
