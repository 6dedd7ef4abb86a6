"""Retrieval on the public dev sets, beside the naive baselines, in one run.

The data comes from ``bench/build_evalsets.py``: ``ROOT/meetings/<meeting>.srt`` (QMSum
train/validation meetings) and ``ROOT/repos/<name>/`` (SWE-QA repositories at their pinned
commits), ROOT being ``.evaldata/`` by default; the questions are ``datasets/eval/qmsum-dev.jsonl``
and ``datasets/eval/sweqa-dev.jsonl``.

The run keeps a data home of its own (``ROOT/home``) with the caller's settings otherwise, so the
public corpus never mixes with the user's. It ingests the meetings and repositories there (an
incremental ingest: nothing is redone when nothing changed; ``max_commits`` newest commits per
repository, as distractors), then scores

- each meeting question within its meeting (QMSum's task: the meeting is given) with lorebase's
  bm25, dense and hybrid retrieval and with the naive baselines of ``baselines`` (60-second
  windows, plain BM25 and MiniLM); a result is a hit when its time range overlaps a gold span,
  and ``span_s`` is the median length of the top-5 results, since longer windows hit more easily;
  all meetings together, then each of QMSum's collections (AMI, ICSI, committee) apart;
- each code question within its repository, ranking files (each at the rank of its best chunk);
  a result is a hit when it is a gold file (file hit@n);
- when ``bench/build_evalsets.py`` found TutorialVQA (``ROOT/tutorials/*.srt`` and
  ``ROOT/tutorialvqa-dev.jsonl``; never committed, its repository states no licence): each
  tutorial question across all 76 videos, as a student searches a course, in a data home of its
  own (``ROOT/home-tutorials``, so the meetings' scores do not change with it); a result is a hit
  when it is in the gold video and overlaps the gold segment. The naive baselines rank the same
  way, across every video's windows;
- when ``bench/build_evalsets.py`` built held-out SWE-QA repositories (``ROOT/holdout-repos/``,
  questions ``datasets/eval/sweqa-holdout.jsonl``): their code questions as above, in a home of
  their own (``ROOT/home-holdout``). No setting was chosen on them, so their figures estimate a
  repository nobody tuned for;
- likewise the tuning repositories (``ROOT/tuning-repos/``, ``datasets/eval/sweqa-tuning.jsonl``)
  in ``ROOT/home-tuning``: more repositories to choose settings on beside the dev ones
  (``bench/bench_code_fusion.py --set``), so that the held-out ones stay unseen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lorebase.errors import InvalidInput
from lorebase.eval.retrieval import MODES, Question, check_gold, evaluate_questions

if TYPE_CHECKING:
    from lorebase.eval.baselines import Window, WindowRetriever
    from lorebase.index.search import SearchService
    from lorebase.index.sync import IndexSyncer
    from lorebase.ingest.service import IngestService
    from lorebase.settings import Settings
    from lorebase.store import Store

log = logging.getLogger(__name__)

MEETINGS_FOLDER = "meetings"  # also the lecture-id prefix: ingesting ROOT/meetings names them meetings/<stem>
TUTORIALS_FOLDER = "tutorials"  # likewise: tutorials/<video>
TUTORIAL_QUESTIONS = "tutorialvqa-dev.jsonl"  # in ROOT, beside the videos (built, not committed)
HOLDOUT_FOLDER = "holdout-repos"  # in ROOT: SWE-QA repositories no setting was chosen on (built, not committed)
HOLDOUT_QUESTIONS = "sweqa-holdout.jsonl"  # in datasets/eval, beside sweqa-dev.jsonl
TUNING_FOLDER = "tuning-repos"  # in ROOT: SWE-QA repositories for choosing settings beside the dev ones
TUNING_QUESTIONS = "sweqa-tuning.jsonl"
BASELINE_WINDOW_S = 60.0
BUILD_HINT = "build it with: .venv/bin/python bench/build_evalsets.py (see datasets/eval/README.md)"


@dataclass(frozen=True)
class PublicSets:
    root: Path
    meetings: Path
    repos: list[Path]
    meeting_rows: list[dict[str, Any]]
    code_rows: list[dict[str, Any]]
    tutorials: Path | None = None  # TutorialVQA's videos, when built
    tutorial_rows: list[dict[str, Any]] = field(default_factory=list)
    holdout_repos: list[Path] = field(default_factory=list)  # held-out SWE-QA repositories, when built
    holdout_rows: list[dict[str, Any]] = field(default_factory=list)
    tuning_repos: list[Path] = field(default_factory=list)  # tuning SWE-QA repositories, when built
    tuning_rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def locate(cls, root: Path, datasets: Path) -> PublicSets:
        """The built data and the question files; InvalidInput naming what is missing."""
        root, datasets = Path(root), Path(datasets)
        meetings = root / MEETINGS_FOLDER
        if not any(meetings.glob("*.srt")):
            raise InvalidInput(f"no meetings in {meetings}; {BUILD_HINT}")
        repos = sorted(p for p in (root / "repos").glob("*") if (p / ".git").exists())
        if not repos:
            raise InvalidInput(f"no repositories in {root / 'repos'}; {BUILD_HINT}")
        tutorials = root / TUTORIALS_FOLDER
        built = any(tutorials.glob("*.srt")) and (root / TUTORIAL_QUESTIONS).is_file()
        held = _clones(root / HOLDOUT_FOLDER)
        tuning = _clones(root / TUNING_FOLDER)
        code_keys = ("id", "repo", "question", "gold_files")
        return cls(root, meetings, repos, _jsonl(datasets / "qmsum-dev.jsonl", ("id", "meeting", "question", "gold_spans")),
                   _jsonl(datasets / "sweqa-dev.jsonl", code_keys),
                   tutorials if built else None,
                   _jsonl(root / TUTORIAL_QUESTIONS, ("id", "video", "question", "gold_spans")) if built else [],
                   held, _cloned(held, _jsonl(datasets / HOLDOUT_QUESTIONS, code_keys)) if held else [],
                   tuning, _cloned(tuning, _jsonl(datasets / TUNING_QUESTIONS, code_keys)) if tuning else [])


def _clones(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if (p / ".git").exists())


def _cloned(clones: list[Path], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows about repositories that were cloned (``owner/name`` in a folder ``name``): a set built
    with one mirror missing scores the others, instead of counting the missing one's questions as misses."""
    names = {p.name for p in clones}
    kept = [r for r in rows if str(r["repo"]).rsplit("/", 1)[-1] in names]
    for repo in sorted({str(r["repo"]) for r in rows} - {str(r["repo"]) for r in kept}):
        log.warning("%s is not built (no clone in %s): its questions are left out; %s", repo, clones[0].parent, BUILD_HINT)
    return kept


def _jsonl(path: Path, keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rows of a JSONL file, each an object holding ``keys``; InvalidInput naming the line otherwise."""
    if not path.is_file():
        raise InvalidInput(f"question file {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InvalidInput(f"{path} line {n} is not JSON: {e}") from None
            missing = [k for k in keys if not isinstance(row, dict) or k not in row]
            if missing:
                raise InvalidInput(f"{path} line {n} lacks {', '.join(missing)}; {BUILD_HINT}")
            rows.append(row)
    return rows


# --- questions ------------------------------------------------------------------------------------


def meeting_questions(rows: list[dict[str, Any]], prefix: str = MEETINGS_FOLDER) -> list[Question]:
    """QMSum rows as retrieval questions: gold time spans, searched within the meeting."""
    out = []
    for r in rows:
        lecture = f"{prefix}/{r['meeting']}"
        gold = [check_gold({"lecture": lecture, "start": float(s), "end": float(e)}) for s, e in r["gold_spans"]]
        out.append(Question(r["id"], r["question"], gold, "transcript", {"lecture": lecture}, r.get("answer")))
    return out


def tutorial_questions(rows: list[dict[str, Any]], videos: list[str], prefix: str = TUTORIALS_FOLDER) -> list[Question]:
    """TutorialVQA rows as retrieval questions: the gold segment of one video, searched across all
    ``videos`` (their file stems), as a student searches a course."""
    lectures = [f"{prefix}/{v}" for v in videos]
    return [
        Question(r["id"], r["question"],
                 [check_gold({"lecture": f"{prefix}/{r['video']}", "start": float(s), "end": float(e)}) for s, e in r["gold_spans"]],
                 "transcript", {"lecture": lectures})
        for r in rows
    ]


def code_questions(rows: list[dict[str, Any]]) -> list[Question]:
    """SWE-QA rows as retrieval questions: any chunk of a gold file, searched within the repository."""
    return [
        Question(r["id"], r["question"], [{"path": p, "repo": r["repo"]} for p in r["gold_files"]], "code",
                 {"repo": r["repo"]}, r.get("answer"))
        for r in rows
    ]


def meeting_set(meeting: str) -> str:
    """Which of QMSum's three collections a meeting comes from, by its name."""
    if meeting[:2] in ("ES", "IS", "TS", "EN"):
        return "AMI"  # product-design meetings of the AMI corpus
    if "_" in meeting:
        return "committee"  # Welsh Parliament and Parliament of Canada committees
    return "ICSI"  # research-group meetings of the ICSI corpus (Bed, Bmr, Bro, ...)


# --- baselines ------------------------------------------------------------------------------------


def baseline_windows(meetings: Path, prefix: str = MEETINGS_FOLDER, size: float = BASELINE_WINDOW_S) -> list[Window]:
    from lorebase.eval.baselines import fixed_windows
    from lorebase.ingest.transcripts.formats import decode_text, parse_transcript

    windows: list[Window] = []
    for path in sorted(meetings.glob("*.srt")):
        text, _ = decode_text(path.read_bytes())
        windows += fixed_windows(f"{prefix}/{path.stem}", parse_transcript(text, ".srt").segments, size)
    return windows


def score_baseline(retriever: WindowRetriever, questions: list[Question], k: int) -> dict[str, Any]:
    """hit@1, hit@5, recall@k (share of gold spans hit), MRR and span_s, as ``evaluate_questions``.
    A question filtered to one lecture ranks that lecture's windows; one filtered to several ranks
    all the retriever's windows (build it from those lectures only)."""
    h1 = h5 = rec = rr = 0.0
    spans: list[float] = []
    for q in questions:
        lecture = q.filters["lecture"]
        top = retriever.rank(q.question, lecture if isinstance(lecture, str) else None, max(k, 5))
        gold = [(g["lecture"], g["start"], g["end"]) for g in q.gold]
        rel = [any(_hits(w, g) for g in gold) for w in top]
        h1 += bool(rel[:1] and rel[0])
        h5 += any(rel[:5])
        rec += sum(any(_hits(w, g) for w in top[:k]) for g in gold) / len(gold)
        first = next((i for i, r in enumerate(rel[:k]) if r), None)
        rr += 1.0 / (first + 1) if first is not None else 0.0
        spans += [w.end - w.start for w in top[:5]]
    n = max(len(questions), 1)
    return {"n": len(questions), "hit@1": round(h1 / n, 4), "hit@5": round(h5 / n, 4), f"recall@{k}": round(rec / n, 4),
            "mrr": round(rr / n, 4), "span_s": round(median(spans), 1) if spans else None}


def _hits(w: Window, gold: tuple[str, float, float]) -> bool:
    """Is window ``w`` in the gold (lecture, start, end) and overlapping it?"""
    return w.lecture == gold[0] and w.start < gold[2] and gold[1] < w.end


def minilm(settings: Settings) -> Callable[[list[str]], np.ndarray]:
    """The bundled MiniLM as an embedding function, whatever embedder the settings configure."""
    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.offline_models import embedder_path
    from lorebase.settings import DEFAULT_EMBEDDER

    default = settings.model_copy(update={"models": settings.models.model_copy(update={"embedder": DEFAULT_EMBEDDER})})
    model = load_sentence_model(embedder_path(default), resolve_dtype(settings.index.embed_dtype))

    def embed(texts: list[str]) -> np.ndarray:
        vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    return embed


# --- the run --------------------------------------------------------------------------------------


def public_settings(settings: Settings, root: Path, max_commits: int, home: str = "home") -> Settings:
    """The caller's settings with the public data's own home (``ROOT/home``, or ``ROOT/<home>``)
    and commit limit."""
    ingest = settings.ingest.model_copy(update={"max_commits": max_commits})
    return settings.model_copy(update={"home": (Path(root) / home).resolve(), "database_url": None, "ingest": ingest})


class RetrievalParts(Protocol):
    """What a run uses of the services (lorebase.services.Services has them): the caller builds them,
    for the settings given, since eval sits below the services."""

    ingest: IngestService
    indexer: IndexSyncer
    search: SearchService
    store: Store


def run_public(
    settings: Settings, root: Path, datasets: Path, *, build: Callable[[Settings], RetrievalParts], k: int = 10,
    max_commits: int = 200, ingest: bool = True, baselines: bool = True,
) -> dict[str, Any]:
    """Every public set through lorebase's three modes, and the meetings through the baselines.
    `build` makes the services for the public data's own home (public_settings)."""
    from lorebase.eval.baselines import WindowRetriever

    sets = PublicSets.locate(root, datasets)
    s = public_settings(settings, sets.root, max_commits)
    svc = build(s)
    report: dict[str, Any] = {"root": str(sets.root), "home": str(s.home), "k": k, "max_commits": max_commits, "sets": []}
    try:
        if ingest:
            run = svc.ingest.ingest([str(sets.meetings), *map(str, sets.repos)])
            report["ingest"] = {"status": run.status, "added": run.added, "updated": run.updated,
                                "unchanged": run.unchanged, "failed": run.failed, "errors": run.errors}
        svc.indexer.sync()
        meetings = meeting_questions(sets.meeting_rows)
        windows = baseline_windows(sets.meetings) if baselines else []
        naive = ({"naive 60s bm25": WindowRetriever(windows, "bm25"),
                  "naive 60s minilm": WindowRetriever(windows, "dense", minilm(s))} if baselines else {})
        groups: dict[str, list[Question]] = {"qmsum-dev": meetings}
        for q, row in zip(meetings, sets.meeting_rows, strict=True):
            groups.setdefault(f"qmsum-dev {meeting_set(row['meeting'])}", []).append(q)
        for name, qs in groups.items():
            r = evaluate_questions(svc.search, svc.store, qs, k=k)
            rows = {m: r["modes"][m]["overall"] for m in MODES}
            for label, retriever in naive.items():
                rows[label] = score_baseline(retriever, qs, k)
            report["sets"].append({"set": name, "kind": "transcript", "rows": rows, "unmatched_gold": r["unmatched_gold"],
                                   "problems": r["problems"]})
        report["sets"] += _code_sets(svc, sets.code_rows, k)
    finally:
        svc.store.close()
    if sets.tutorials is not None:
        report["sets"].append(_run_tutorials(settings, sets.root, sets.tutorials, sets.tutorial_rows, build, k=k,
                                             max_commits=max_commits, ingest=ingest, baselines=baselines, report=report))
    for key, repos, questions, label in (("holdout", sets.holdout_repos, sets.holdout_rows, "sweqa held-out"),
                                         ("tuning", sets.tuning_repos, sets.tuning_rows, "sweqa tuning")):
        if repos:
            report["sets"] += _run_repo_home(settings, sets.root, key, repos, questions, label, build, k=k,
                                             max_commits=max_commits, ingest=ingest, report=report)
    return report


def _code_sets(svc: RetrievalParts, rows: list[dict[str, Any]], k: int, label: str = "sweqa") -> list[dict[str, Any]]:
    """Each repository's code questions, searched within it, as file hit@n."""
    by_repo: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_repo.setdefault(row["repo"], []).append(row)
    out = []
    for repo, rows_ in sorted(by_repo.items()):
        r = evaluate_questions(svc.search, svc.store, code_questions(rows_), k=k, distinct_sources=True)
        out.append({"set": f"{label} {repo}", "kind": "code", "rows": {m: r["modes"][m]["overall"] for m in MODES},
                    "unmatched_gold": r["unmatched_gold"], "problems": r["problems"]})
    return out


def _run_repo_home(
    settings: Settings, root: Path, key: str, repos: list[Path], rows: list[dict[str, Any]], label: str,
    build: Callable[[Settings], RetrievalParts], *, k: int, max_commits: int, ingest: bool, report: dict[str, Any],
) -> list[dict[str, Any]]:
    """Repositories in a home of their own (``ROOT/home-<key>``), so that their chunks change no
    other set's BM25 statistics: the held-out ones (no setting chosen on them) or the tuning ones."""
    s = public_settings(settings, root, max_commits, home=f"home-{key}")
    svc = build(s)
    report[f"{key}_home"] = str(s.home)
    try:
        if ingest:
            run = svc.ingest.ingest([str(p) for p in repos])
            report[f"{key}_ingest"] = {"status": run.status, "added": run.added, "updated": run.updated,
                                       "unchanged": run.unchanged, "failed": run.failed, "errors": run.errors}
        svc.indexer.sync()
        out = _code_sets(svc, rows, k, label=label)
        for entry in out:
            if not ingest and entry["unmatched_gold"] and not any(v.get("n") for v in entry["rows"].values()):
                entry["problems"].append({"question": "all", "where": label,
                                          "error": f"{s.home} holds none of it; run once without --no-ingest"})
        return out
    finally:
        svc.store.close()


def _run_tutorials(
    settings: Settings, root: Path, tutorials: Path, rows_: list[dict[str, Any]], build: Callable[[Settings], RetrievalParts],
    *, k: int, max_commits: int, ingest: bool, baselines: bool, report: dict[str, Any],
) -> dict[str, Any]:
    """The TutorialVQA set in its own home: every question across all the videos."""
    from lorebase.eval.baselines import WindowRetriever

    s = public_settings(settings, root, max_commits, home="home-tutorials")
    svc = build(s)
    report["tutorials_home"] = str(s.home)
    try:
        if ingest:
            run = svc.ingest.ingest([str(tutorials)])
            report["tutorials_ingest"] = {"status": run.status, "added": run.added, "updated": run.updated,
                                          "unchanged": run.unchanged, "failed": run.failed, "errors": run.errors}
        svc.indexer.sync()
        videos = sorted(p.stem for p in tutorials.glob("*.srt"))
        questions = tutorial_questions(rows_, videos)
        r = evaluate_questions(svc.search, svc.store, questions, k=k)
        if not ingest and questions and len(r["unscored_questions"]) == len(questions):
            r["problems"].append({"question": "all", "where": "tutorials",
                                  "error": f"{s.home} holds none of the videos; run once without --no-ingest"})
        rows = {m: r["modes"][m]["overall"] for m in MODES}
        if baselines:
            windows = baseline_windows(tutorials, prefix=TUTORIALS_FOLDER)
            rows["naive 60s bm25"] = score_baseline(WindowRetriever(windows, "bm25"), questions, k)
            rows["naive 60s minilm"] = score_baseline(WindowRetriever(windows, "dense", minilm(s)), questions, k)
        return {"set": f"tutorialvqa-dev ({len(videos)} videos)", "kind": "transcript", "rows": rows,
                "unmatched_gold": r["unmatched_gold"], "problems": r["problems"]}
    finally:
        svc.store.close()


def format_public(report: dict[str, Any]) -> str:
    k = report["k"]
    cols = ["hit@1", "hit@5", f"recall@{k}", "mrr", "span_s"]
    lines = [
        f"Retrieval on the public dev sets ({report['root']}; data home {report['home']}, k={k})",
        "",
        "| set | retriever | n | " + " | ".join(cols) + " |",
        "|---|---|---:|" + "---:|" * len(cols),
    ]
    for st in report["sets"]:
        for name, m in st["rows"].items():
            vals = [f"{m[c]:.3f}" if isinstance(m.get(c), float) and c != "span_s" else
                    (f"{m[c]:.0f}" if m.get(c) is not None else "") for c in cols]
            lines.append(f"| {st['set']} | {name} | {m['n']} | " + " | ".join(vals) + " |")
    for st in report["sets"]:
        if st["unmatched_gold"]:
            lines.append(f"\n{st['set']}: {len(st['unmatched_gold'])} gold items match nothing in the store, e.g. "
                         + json.dumps(st["unmatched_gold"][0]))
        for p in st["problems"]:
            lines.append(f"\n{st['set']}: {p['question']} ({p['where']}): {p['error']}")
    return "\n".join(lines)
