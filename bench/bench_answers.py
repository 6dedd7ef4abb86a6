"""Answer quality on the public dev sets: every generator profile and the extractive baseline, one table.

    .venv/bin/python bench/bench_answers.py --code-home H1 --meetings-home H2 --rows extractive,tiny,small \
        [--limit N] [--out bench-answers.json]

Each home must already hold its corpus (`lorebase ingest`): the code home the SWE-QA repositories of
datasets/eval/sweqa-dev.jsonl (bench/build_evalsets.py rebuilds them), the meetings home the QMSum
meetings as SRT. Each row runs `lorebase eval answers` on the code questions (and the code
unanswerable ones) and on the meeting questions (and theirs), with LOREBASE_MODELS__GENERATOR set to
the row's profile; `extractive` starts no generator. A row `small:bfloat16` serves the profile in that
vLLM dtype (`generation.vllm_dtype`), to compare precisions on the same questions. A row
`small+NAME` answers with the LoRA adapter NAME given by `--adapter NAME=FOLDER` (served beside its
base model, `generation.adapters`), so a tuned adapter and its base run on the same questions.
Prints a markdown table for docs/benchmarks.md.

A row `small@judge` answers with the answerability judge on (`answer.answerability_judge` set to
`--judge`, default the base profile); every other generator row runs with it off, so the two sit
side by side whatever the home has prepared.

``--tutorials-home H --sets tutorials`` runs TutorialVQA's dev questions (`.evaldata/tutorialvqa-dev.jsonl`,
built by bench/build_evalsets.py from a local mirror; never committed) in a home holding its videos
(`lorebase ingest .evaldata/tutorials`), each searched across every video; the reference answer is
the gold segment's caption text.

A row `small~NAME` answers with settings changed as `--variant NAME=section.key=value;...` says
(e.g. `--variant low='answer.min_relevance=0.2;answer.min_evidence_score=0.2'`, set through
`LOREBASE_SECTION__KEY`), so a setting and the default run side by side on the same questions.

``--holdout-home H --sets holdout`` runs the held-out SWE-QA repositories' questions
(`datasets/eval/sweqa-holdout.jsonl`, repositories no setting was chosen on) and the unanswerable
questions written for them before any was run (`datasets/eval/unanswerable-holdout.jsonl`), in the
home `lorebase eval retrieval` ingested them into (`.evaldata/home-holdout`).

``--meetings FILE --folder NAME`` runs other QMSum queries instead of the dev ones (e.g. the train
queries of `bench/build_evalsets.py`, `.evaldata/qmsum-tuning.jsonl`, in a home where their
meetings were ingested from `.evaldata/tuning-meetings`): each is searched within `NAME/<meeting>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets" / "eval"
COLUMNS = ("verified_and_cites_gold", "verified", "cites_gold", "citations_mean", "citation_precision",
           "extractive_share", "rougeL", "similarity",
           "abstention", "false_abstention", "prompt_tokens_p50", "ttft_p50_s", "latency_p50_s")


def _split_unanswerable(tmp: Path, repos: set[str] | None) -> tuple[Path, Path]:
    code, meet = tmp / "unanswerable-code.jsonl", tmp / "unanswerable-meetings.jsonl"
    with open(code, "w") as c, open(meet, "w") as m:
        for line in (DATA / "unanswerable-dev.jsonl").read_text().splitlines():
            d = json.loads(line)
            if d["set"] == "code" and (repos is None or d.get("repo") in repos):
                c.write(line + "\n")
            elif d["set"] == "meetings":
                m.write(line + "\n")
    return code, meet


def _filter_code(tmp: Path, repos: set[str] | None, per_repo: int | None = None) -> Path:
    """The SWE-QA dev questions of ``repos`` (all when None), the first ``per_repo`` of each."""
    if repos is None and per_repo is None:
        return DATA / "sweqa-dev.jsonl"
    kept: dict[str, int] = {}
    lines = []
    for line in (DATA / "sweqa-dev.jsonl").read_text().splitlines():
        repo = json.loads(line)["repo"]
        if (repos is None or repo in repos) and (per_repo is None or kept.get(repo, 0) < per_repo):
            kept[repo] = kept.get(repo, 0) + 1
            lines.append(line + "\n")
    out = tmp / "sweqa-dev.jsonl"
    out.write_text("".join(lines))
    return out


def _in_folder(tmp: Path, questions: Path, folder: str) -> Path:
    """The meeting questions, each searched within ``folder``/<meeting> (as is for ``meetings``)."""
    if folder == "meetings":
        return questions
    out = tmp / questions.name
    rows = [json.loads(x) for x in questions.read_text().splitlines() if x.strip()]
    out.write_text("".join(json.dumps({**r, "lecture": f"{folder}/{r['meeting']}"}) + "\n" for r in rows))
    return out


def variant_env(text: str) -> dict[str, str]:
    """``section.key=value;...`` as the environment variables that set them (LOREBASE_SECTION__KEY)."""
    env = {}
    for item in filter(None, (x.strip() for x in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"--variant: write section.key=value, not {item!r}")
        env["LOREBASE_" + key.upper().replace(".", "__")] = value
    return env


def run_row(row: str, home: Path, files: list[Path], limit: int | None, adapters: dict[str, str], judge: str,
            variants: dict[str, dict[str, str]] | None = None) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [str(ROOT / ".venv/bin/lorebase"), "eval", "answers", *map(str, files), "--out", str(out)]
    if row == "extractive":
        cmd.append("--extractive")
    if limit:
        cmd += ["--limit", str(limit)]
    env = {**os.environ, "LOREBASE_HOME": str(home)}
    if row != "extractive":
        row, _, variant = row.partition("~")
        if variant:
            if variant not in (variants or {}):
                raise SystemExit(f"row {row}~{variant}: no --variant {variant}=... given")
            env.update((variants or {})[variant])
        row, _, judged = row.partition("@")
        if judged not in ("", "judge"):
            raise SystemExit(f"row {row}@{judged}: the only suffix is @judge")
        env["LOREBASE_ANSWER__ANSWERABILITY_JUDGE"] = judge if judged else "off"
        spec, _, dtype = row.partition(":")
        profile, _, adapter = spec.partition("+")
        if adapter:
            if adapter not in adapters:
                raise SystemExit(f"row {row!r}: no --adapter {adapter}=FOLDER given")
            env["LOREBASE_GENERATION__ADAPTERS"] = json.dumps({adapter: adapters[adapter]})
            cmd += ["--model", adapter]
        env["LOREBASE_MODELS__GENERATOR"] = profile
        if dtype:
            env["LOREBASE_GENERATION__VLLM_DTYPE"] = dtype
    print("+", " ".join(cmd), f"(generator {row})", file=sys.stderr, flush=True)
    subprocess.run(cmd, env=env, check=True)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code-home", type=Path, default=None, help="home of the SWE-QA repositories (set code)")
    ap.add_argument("--meetings-home", type=Path, default=None, help="home of the QMSum meetings (set meetings)")
    ap.add_argument("--tutorials-home", type=Path, default=None, help="home of TutorialVQA's videos (set tutorials)")
    ap.add_argument("--holdout-home", type=Path, default=None,
                    help="home of the held-out SWE-QA repositories (set holdout; `lorebase eval retrieval` makes .evaldata/home-holdout)")
    ap.add_argument("--rows", default="extractive,tiny,small")
    ap.add_argument("--repos", default=None, help="only these SWE-QA repos, comma-separated (e.g. pallets/flask)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many questions of each file")
    ap.add_argument("--per-repo", type=int, default=None, help="the first N SWE-QA questions of each repository")
    ap.add_argument("--sets", default="code,meetings",
                    help="which sets to run: code, meetings, tutorials, holdout (default code,meetings)")
    ap.add_argument("--adapter", action="append", default=[], metavar="NAME=FOLDER",
                    help="a LoRA adapter folder for rows `PROFILE+NAME` (repeatable)")
    ap.add_argument("--meetings", type=Path, default=DATA / "qmsum-dev.jsonl", help="the QMSum queries (default: the dev set)")
    ap.add_argument("--folder", default="meetings", help="the folder the meetings were ingested from (default: meetings)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=section.key=value;...",
                    help="settings for rows `PROFILE~NAME` (repeatable)")
    ap.add_argument("--judge", default="base", help="the answerability judge of `@judge` rows: a profile or a model folder")
    ap.add_argument("--out", type=Path, default=Path("bench-answers.json"))
    args = ap.parse_args()
    if bad := [a for a in args.adapter if "=" not in a]:
        ap.error(f"--adapter {bad[0]!r}: write NAME=FOLDER")
    adapters = dict(a.split("=", 1) for a in args.adapter)
    if bad := [v for v in args.variant if not v.partition("=")[2]]:
        ap.error(f"--variant {bad[0]!r}: write NAME=section.key=value;...")
    variants = {name: variant_env(text) for name, _, text in (v.partition("=") for v in args.variant)}
    repos = set(args.repos.split(",")) if args.repos else None
    tmp = Path(tempfile.mkdtemp())
    un_code, un_meet = _split_unanswerable(tmp, repos)
    every = {"code": (args.code_home, [_filter_code(tmp, repos, args.per_repo), un_code]),
             # the unanswerable meeting questions are about the dev meetings: only beside them
             "meetings": (args.meetings_home, [_in_folder(tmp, args.meetings, args.folder)]
                          + ([un_meet] if args.folder == "meetings" else [])),
             "tutorials": (args.tutorials_home, [ROOT / ".evaldata" / "tutorialvqa-dev.jsonl"]),
             "holdout": (args.holdout_home, [DATA / "sweqa-holdout.jsonl", DATA / "unanswerable-holdout.jsonl"])}
    chosen = args.sets.split(",")
    if unknown := set(chosen) - set(every):
        raise SystemExit(f"--sets: unknown {', '.join(sorted(unknown))}; choose from {', '.join(every)}")
    if missing := [name for name in chosen if every[name][0] is None]:
        raise SystemExit(f"--sets {missing[0]} needs --{missing[0]}-home")
    if "tutorials" in chosen and not every["tutorials"][1][0].is_file():
        raise SystemExit("no .evaldata/tutorialvqa-dev.jsonl: build it with bench/build_evalsets.py (needs a mirror of onue5/VideoQA)")
    sets = [every[name] for name in chosen]
    results: dict[str, dict] = {}
    for row in args.rows.split(","):
        for home, files in sets:
            for name, data in run_row(row, home, files, args.limit, adapters, args.judge, variants).items():
                results.setdefault(row, {})[name] = data
    load = Path("/proc/loadavg").read_text().split()[:3]
    args.out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"), "load": load,
                                    "results": results}, indent=1, default=str))
    print(f"\nload {' '.join(load)}, {datetime.now(UTC):%Y-%m-%d}\n")
    print("| row | set | n | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---:|" + "---:|" * len(COLUMNS))
    for row, sets_ in results.items():
        for name, data in sets_.items():
            s = data["summary"]
            cells = ["—" if s.get(c) is None else (f"{s[c]:.3f}" if isinstance(s[c], float) else str(s[c])) for c in COLUMNS]
            print(f"| {row} | {name} | {s['n']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
