"""Rebuild the public evaluation data (QMSum meetings as SRT, SWE-QA repositories at their pinned
commits) from local git mirrors, and optionally the small question files under datasets/eval/.

Sources (public, nobody here wrote them):
- QMSum (github.com/Yale-LILY/QMSum, MIT; its AMI and ICSI transcripts are CC BY 4.0): meeting
  transcripts as speaker turns, with specific queries whose answers lie in known turn spans and a
  general query ("Summarize the whole meeting") with a reference summary.
- SWE-QA-Bench (github.com/peng-weihan/SWE-QA-Bench, Apache-2.0): 48 questions with reference
  answers per repository, each repository pinned to one commit (its repo_commit.txt).
- The code repositories themselves (pallets/flask, pytest-dev/pytest, sqlfluff/sqlfluff, pydata/xarray;
  held out: sphinx-doc/sphinx, pylint-dev/pylint; for tuning: streamlink/streamlink, reflex-dev/reflex).
- Optionally TutorialVQA (github.com/onue5/VideoQA; Colas et al., "TutorialVQA: Question Answering
  Dataset for Tutorial Videos", LREC 2020): 76 Photoshop tutorial videos with their caption
  sentences timed to the video, and questions whose answer is one segment of a video. Its
  repository states no licence, so nothing of it is committed here: it is built into .evaldata/
  only, from a local mirror, when the mirror is there (``--no-tutorials`` skips it).

Only QMSum's train and validation meetings and SWE-QA repositories other than psf/requests are
used: QMSum's test split and psf/requests are reserved for acceptance.

Run (from the repository root; about a minute, most of it cloning):

    .venv/bin/python bench/build_evalsets.py                      # data into .evaldata/
    .venv/bin/python bench/build_evalsets.py --write-datasets     # also rewrite datasets/eval/*.jsonl

Mirrors: ``--mirrors DIR`` (default ``$LOREBASE_MIRRORS`` or ``/work/.mirror``) holds one git
repository per project, found as ``DIR/<owner>+<name>/repo``, ``DIR/<owner>+<name>`` or
``DIR/<name>``; each may be bare or a work tree, e.g. made by
``git clone --mirror https://github.com/pallets/flask DIR/pallets+flask/repo``.

Output (``--out``, default ``.evaldata/``, git-ignored):

    .evaldata/
      meetings/<meeting>.srt      one QMSum meeting each; ingest the folder, lecture ids meetings/<meeting>
      repos/<name>/               a clone at the pinned commit (detached HEAD, full history),
                                  origin set to https://github.com/<owner>/<name> so lorebase names it owner/name
      tuning-meetings/<meeting>.srt, qmsum-tuning.jsonl, qmsum-tuning-summaries.jsonl
                                  40 other QMSum train meetings, their specific queries and their
                                  reference summaries, made the same way, for choosing retrieval,
                                  answer and summary settings off the dev set
      retrieval/<set>.jsonl       the question files in lorebase's retrieval-eval format (gold as
                                  {"lecture", "start", "end"} or {"path", "repo"}), made from datasets/eval/;
                                  qmsum-tuning.jsonl searches each tuning query within its meeting
                                  (`lorebase eval retrieval` in a home where tuning-meetings/ was ingested)
      tutorials/<video>-<title>.srt, tutorialvqa-dev.jsonl
                                  TutorialVQA's videos as SRT (real caption times) and its dev-split
                                  questions with their gold segment's time span and, as the reference
                                  answer, the segment's own caption text (when its mirror exists)
      holdout-repos/<name>/       held-out SWE-QA repositories (HOLDOUT_REPOS), cloned as repos/ are; never
                                  used for choosing a setting, scored in a home of their own
      tuning-repos/<name>/        SWE-QA repositories for choosing settings beside the dev ones
                                  (TUNING_REPOS: streamlink, reflex), scored in a home of their own
      manifest.json               what was built from which commit, the speaking rate, the counts

SRT synthesis: QMSum gives turns without times. Each turn is timed at 150 words a minute
(2.5 words/s; at least 1 s a turn) with a 0.3 s pause between turns; a turn with no words left
after cleaning (only {vocalsound} and the like) takes 1 s and writes no cue. Curly-brace event
marks ({disfmarker}, {vocalsound}, {gap}, ...) are removed and spaces before punctuation closed
up. A turn is written as cues of at most 16 words (cut at sentence ends where possible), its time
shared out by words, each cue starting ``<speaker>: ``; a speaker's role in parentheses (the
covid meetings name it on some turns: "Hon. Bill Morneau (Minister of Finance)") is left out of
the label so that one person keeps one label. A specific query's gold span [first turn, last
turn] (inclusive) becomes [start of the first turn, end of the last turn] in the SRT's seconds.
Specific queries whose gold spans cover more than a quarter of the meeting's time are left out
(they are summaries of half the meeting; any window would hit them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORDS_PER_SECOND = 2.5
MIN_TURN_S = 1.0
PAUSE_S = 0.3
CUE_MAX_WORDS = 16
MAX_GOLD_SHARE = 0.25

QMSUM = "Yale-LILY/QMSum"
SWEQA = "peng-weihan/SWE-QA-Bench"
TUTORIALVQA = "onue5/VideoQA"

# Eight meetings of about one to two hours at 150 words a minute, from both allowed splits and all
# three QMSum domains: ICSI research meetings (Bed, Bmr, Bro), an AMI product meeting (TS) and
# Welsh Assembly / Canadian Parliament committees (education, covid).
MEETINGS = {
    "val": ["Bed002", "Bro005", "education_18", "TS3009b"],
    "train": ["Bmr010", "Bro012", "education_6", "covid_5"],
}
SPLIT_DIR = {"train": "train", "val": "val"}  # never "test": reserved for acceptance

# SWE-QA-Bench repositories used here; psf/requests is reserved for acceptance and refused.
REPOS = {"flask": "pallets/flask", "pytest": "pytest-dev/pytest", "sqlfluff": "sqlfluff/sqlfluff", "xarray": "pydata/xarray"}
RESERVED_REPOS = {"requests"}
# Held out: repositories no setting was ever chosen on, scored in a home of their own
# (`lorebase eval retrieval` adds them when built), for an estimate of a repository nobody tuned for.
HOLDOUT_REPOS = {"sphinx": "sphinx-doc/sphinx", "pylint": "pylint-dev/pylint"}
# For choosing settings beside the dev repositories, so that a weight chosen leave-one-repository-out
# is chosen on six repositories and the held-out two stay unseen; scored in a home of their own too.
TUNING_REPOS = {"streamlink": "streamlink/streamlink", "reflex": "reflex-dev/reflex"}

_EVENT = re.compile(r"\{\w+\}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.?!;:%)])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ROLE = re.compile(r"\s*\(.*\)\s*$")
# A path-like mention in a reference answer: at least a file name with an extension we index; a
# leading slash ("/src/pkg/mod.py", the repository root) is not part of the path.
_PATH = re.compile(r"(?<![\w/.-])/?((?:[\w.-]+/)*[\w.-]+\.(?:py|pyi|rst|md|txt|toml|cfg|ini|ya?ml|json|sql|html|jinja|js|css))(?![\w/])")


# --- TutorialVQA as SRT --------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]


def build_tutorials(mirror: Path, out: Path) -> tuple[list[dict], dict]:
    """TutorialVQA's videos as SRT files (one cue per caption sentence, at its own times; the
    ">>" mark of a new speaker dropped) and its dev questions, each with the time span of the video
    segment that answers it. Only the dev split is written: train and test are left alone."""
    videos = json.loads(show(mirror, "HEAD", "data/raw/helpx_photoshop_tutorials.events.json"))
    segments = {v["video_id"]: v["segments"] if isinstance(v["segments"], list) else _literal(v["segments"])
                for v in json.loads(show(mirror, "HEAD", "data/videos.json"))}
    folder = out / "tutorials"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    stems: dict[str, str] = {}
    timed: dict[str, list[tuple[str, float, float]]] = {}  # per video, every sentence by its index
    sentences = 0
    for v in videos:
        stem = f"{v['video_id']}-{_slug(v['video_title'])}"
        stems[v["video_id"]] = stem
        lines: list[str] = []
        n = 0
        timed[v["video_id"]] = _timed_sentences([s for seg in v["segments"] for s in seg["sentences"]], keep_empty=True)
        for text, begin, end in (t for t in timed[v["video_id"]] if t[0]):
            n += 1
            lines += [str(n), f"{srt_time(begin)} --> {srt_time(end)}", text, ""]
        sentences += n
        (folder / f"{stem}.srt").write_text("\n".join(lines), encoding="utf-8")
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    no_segment = 0
    for i, q in enumerate(json.loads(show(mirror, "HEAD", "data/dev.json"))):
        vid, text = q["video_id"], " ".join(q["question"].split())
        if (vid, text.lower()) in seen or vid not in stems:
            continue
        seen.add((vid, text.lower()))
        seg = next((s for s in segments.get(vid, []) if s["sentence_indexes"]["start"] == q["answer_start"]
                    and s["sentence_indexes"]["end"] == q["answer_end"]), None)
        if seg is None:  # an answer that is no segment of its video has no time span: left out, counted
            no_segment += 1
            continue
        lo, hi = seg["sentence_indexes"]["start"], seg["sentence_indexes"]["end"]
        said = " ".join(t for t, _, _ in timed[vid][lo:hi + 1])
        rows.append({"id": f"tutorialvqa-dev-{i}", "video": stems[vid], "question": text, "answer": said,
                     "gold_spans": [[float(seg["timestamps"]["start"]), float(seg["timestamps"]["end"])]]})
    write_jsonl(out / "tutorialvqa-dev.jsonl", rows)
    return rows, {"videos": len(videos), "sentences": sentences, "left_out_no_segment": no_segment}


def _timed_sentences(sents: list[dict], keep_empty: bool = False) -> list[tuple[str, float, float]]:
    """Each caption sentence with its times (with ``keep_empty``, empty ones too, so that the list
    follows the dataset's sentence indexes). 13 of the 3,664 lack a begin or an end: a missing
    begin is the previous sentence's end, a missing end the next one's begin."""
    out: list[tuple[str, float, float]] = []
    for i, sent in enumerate(sents):
        text = " ".join(sent["sent"].replace(">>", " ").split())
        begin = sent["begin"] if sent["begin"] is not None else (sents[i - 1]["end"] if i else None)
        end = sent["end"] if sent["end"] is not None else (sents[i + 1]["begin"] if i + 1 < len(sents) else None)
        b = float(begin) if begin is not None else (out[-1][2] if out else 0.0)
        e = float(end) if end is not None else b + 1.0
        if text or keep_empty:
            out.append((text, b, max(e, b + 0.1)))
    return out


def _literal(text: str) -> list[dict]:
    import ast

    return list(ast.literal_eval(text))


# --- mirrors and git ------------------------------------------------------------------------------


def git(args: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout


def find_mirror(mirrors: Path, slug: str) -> Path:
    owner, name = slug.split("/")
    for cand in (mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}", mirrors / name):
        if cand.is_dir() and subprocess.run(["git", "rev-parse", "--git-dir"], cwd=cand, capture_output=True).returncode == 0:
            return cand
    raise SystemExit(
        f"no git mirror of {slug} under {mirrors}; make one with\n"
        f"  git clone --mirror https://github.com/{slug} {mirrors / (owner + '+' + name) / 'repo'}"
    )


def show(repo: Path, rev: str, path: str) -> str:
    return git(["show", f"{rev}:{path}"], cwd=repo)


# --- QMSum as SRT ---------------------------------------------------------------------------------


def clean_turn(text: str) -> str:
    text = _EVENT.sub(" ", text)
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def speaker_label(name: str) -> str:
    return _ROLE.sub("", " ".join(name.split())) or "Speaker"


def cue_texts(text: str) -> list[str]:
    """A turn's text as cues of at most CUE_MAX_WORDS words, cut at sentence ends where possible."""
    cues: list[list[str]] = []
    cur: list[str] = []
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        if cur and len(cur) + len(words) > CUE_MAX_WORDS:
            cues.append(cur)
            cur = []
        while len(words) > CUE_MAX_WORDS:
            cues.append(words[:CUE_MAX_WORDS])
            words = words[CUE_MAX_WORDS:]
        cur += words
    if cur:
        cues.append(cur)
    return [" ".join(c) for c in cues]


def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


@dataclass
class TimedMeeting:
    srt: str
    turn_times: list[tuple[float, float]]  # per QMSum turn index
    duration: float


def synthesise(turns: list[dict[str, str]]) -> TimedMeeting:
    t = 0.0
    lines: list[str] = []
    times: list[tuple[float, float]] = []
    n = 0
    for turn in turns:
        text = clean_turn(turn["content"])
        words = len(text.split())
        dur = max(MIN_TURN_S, words / WORDS_PER_SECOND)
        times.append((round(t, 3), round(t + dur, 3)))
        if words:
            label = speaker_label(turn["speaker"])
            cs = t
            for cue in cue_texts(text):
                ce = cs + dur * len(cue.split()) / words
                n += 1
                lines += [str(n), f"{srt_time(cs)} --> {srt_time(ce)}", f"{label}: {cue}", ""]
                cs = ce
        t += dur + PAUSE_S
    return TimedMeeting("\n".join(lines), times, round(t - PAUSE_S, 3))


def build_meetings(qmsum: Path, out: Path) -> tuple[list[dict], list[dict], dict]:
    """Write the SRT files; return (specific questions, summary questions, stats)."""
    (out / "meetings").mkdir(parents=True, exist_ok=True)
    specific: list[dict] = []
    summaries: list[dict] = []
    stats: dict[str, dict] = {}
    for split, names in MEETINGS.items():
        for name in names:
            data = json.loads(show(qmsum, "HEAD", f"data/ALL/{SPLIT_DIR[split]}/{name}.json"))
            timed = synthesise(data["meeting_transcripts"])
            (out / "meetings" / f"{name}.srt").write_text(timed.srt, encoding="utf-8")
            kept = dropped = 0
            for i, q in enumerate(data["specific_query_list"], start=1):
                spans = []
                for first, last in q["relevant_text_span"]:
                    a, b = int(first), int(last)
                    spans.append([timed.turn_times[a][0], timed.turn_times[min(b, len(timed.turn_times) - 1)][1]])
                if sum(e - s for s, e in spans) > MAX_GOLD_SHARE * timed.duration:
                    dropped += 1
                    continue
                kept += 1
                specific.append({"id": f"qmsum-{name}-{i}", "meeting": name, "split": split, "question": q["query"].strip(),
                                 "answer": q["answer"].strip(), "gold_spans": spans})
            for i, q in enumerate(data["general_query_list"], start=1):
                summaries.append({"id": f"qmsum-{name}-summary-{i}", "meeting": name, "split": split,
                                  "question": q["query"].strip(), "answer": q["answer"].strip()})
            stats[name] = {"split": split, "turns": len(data["meeting_transcripts"]), "minutes": round(timed.duration / 60, 1),
                           "questions": kept, "dropped_wide_gold": dropped}
    return specific, summaries, stats


def build_tuning(qmsum: Path, out: Path, limit: int) -> int:
    """Other QMSum train meetings (never the dev meetings, never test) for choosing retrieval
    settings: SRT files in out/tuning-meetings/ and their specific queries in
    out/qmsum-tuning.jsonl, made exactly like the dev set. The dev set then reports on meetings
    no setting was chosen on."""
    dev = {m for names in MEETINGS.values() for m in names}
    names = sorted(n.removesuffix(".json") for n in git(["ls-tree", "--name-only", "HEAD:data/ALL/train"], cwd=qmsum).split())
    # Round-robin over the three domains (ICSI B*, committees in lower case, AMI the rest), so
    # that each is represented whatever the limit.
    groups = [[n for n in names if n[0] == "B"], [n for n in names if n[0].islower()],
              [n for n in names if n[0] != "B" and not n[0].islower()]]
    names = [g[i] for i in range(max(map(len, groups))) for g in groups if i < len(g)]
    (out / "tuning-meetings").mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    general: list[dict] = []  # their reference summaries, for choosing summary settings
    used = 0
    for name in names:
        if name in dev or used >= limit:
            continue
        data = json.loads(show(qmsum, "HEAD", f"data/ALL/train/{name}.json"))
        words = sum(len(clean_turn(t["content"]).split()) for t in data["meeting_transcripts"])
        if not 6000 <= words <= 20000:  # about 40 minutes to 2 hours at 150 words a minute
            continue
        used += 1
        timed = synthesise(data["meeting_transcripts"])
        (out / "tuning-meetings" / f"{name}.srt").write_text(timed.srt, encoding="utf-8")
        for i, q in enumerate(data["specific_query_list"], start=1):
            spans = [[timed.turn_times[int(a)][0], timed.turn_times[min(int(b), len(timed.turn_times) - 1)][1]]
                     for a, b in q["relevant_text_span"]]
            if sum(e - s for s, e in spans) > MAX_GOLD_SHARE * timed.duration:
                continue
            rows.append({"id": f"qmsum-{name}-{i}", "meeting": name, "split": "train", "question": q["query"].strip(),
                         "answer": q["answer"].strip(), "gold_spans": spans})
        for i, q in enumerate(data["general_query_list"], start=1):
            general.append({"id": f"qmsum-{name}-summary-{i}", "meeting": name, "split": "train",
                            "question": q["query"].strip(), "answer": q["answer"].strip()})
    write_jsonl(out / "qmsum-tuning.jsonl", rows)
    write_jsonl(out / "qmsum-tuning-summaries.jsonl", general)
    return len(rows)


# --- SWE-QA repositories --------------------------------------------------------------------------


def pinned_commits(sweqa: Path) -> dict[str, tuple[str, str]]:
    """repo name -> (owner/name, short sha) from SWE-QA-Bench's repo_commit.txt."""
    out = {}
    for line in show(sweqa, "HEAD", "repo_commit.txt").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("https://github.com/"):
            slug = parts[0].removeprefix("https://github.com/").removesuffix(".git")
            out[slug.split("/")[1]] = (slug, parts[1])
    return out


def checkout(mirror: Path, slug: str, sha: str, dest: Path) -> str:
    """A clone of ``mirror`` at ``sha`` (detached) in ``dest``; the full sha."""
    full = git(["rev-parse", "--verify", f"{sha}^{{commit}}"], cwd=mirror).strip()
    if dest.exists() and git(["rev-parse", "HEAD"], cwd=dest).strip() == full:
        return full
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    git(["clone", "--quiet", "--no-checkout", str(mirror), str(dest)])
    git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", full], cwd=dest)
    git(["remote", "set-url", "origin", f"https://github.com/{slug}"], cwd=dest)
    return full


def resolve_paths(answer: str, files: set[str], by_name: dict[str, list[str]]) -> list[str]:
    """Files of the commit named in a reference answer, in order of first mention.

    A mention is taken as a path when it is one exactly, or when exactly one file of the commit
    ends with it ("flask/app.py" for src/flask/app.py, "pytester.py"); ambiguous mentions
    ("__init__.py", "conftest.py") are left out."""
    found: list[str] = []
    for m in _PATH.finditer(answer):
        mention = m.group(1).removeprefix("./")
        if mention in files:
            hit = [mention]
        elif "/" in mention:
            hit = [f for f in by_name.get(mention.rsplit("/", 1)[1], []) if f.endswith("/" + mention)]
        else:
            hit = by_name.get(mention, [])
        if len(hit) == 1 and hit[0] not in found:
            found.append(hit[0])
    return found


def build_code(sweqa: Path, mirrors: Path, out: Path, repos: dict[str, str] = REPOS,
               folder: str = "repos") -> tuple[list[dict], dict]:
    """Each of ``repos`` cloned at its pinned commit into ``out/folder/<name>``, and its questions
    whose reference answer names a file of that commit (the gold files)."""
    pins = pinned_commits(sweqa)
    questions: list[dict] = []
    stats: dict[str, dict] = {}
    for name, slug in repos.items():
        if name in RESERVED_REPOS:
            raise SystemExit(f"{name} is reserved for acceptance")
        pin_slug, short = pins[name]
        assert pin_slug == slug, (pin_slug, slug)
        full = checkout(find_mirror(mirrors, slug), slug, short, out / folder / name)
        files = set(git(["ls-tree", "-r", "--name-only", full], cwd=out / folder / name).splitlines())
        by_name: dict[str, list[str]] = {}
        for f in files:
            by_name.setdefault(f.rsplit("/", 1)[-1], []).append(f)
        kept = 0
        lines = show(sweqa, "HEAD", f"Benchmark/{name}.jsonl").splitlines()
        for i, line in enumerate(lines, start=1):
            row = json.loads(line)
            gold = resolve_paths(row["answer"], files, by_name)
            if not gold:
                continue
            kept += 1
            questions.append({"id": f"sweqa-{name}-{i:02d}", "repo": slug, "commit": full, "question": row["question"].strip(),
                              "answer": row["answer"].strip(), "gold_files": gold})
        stats[name] = {"repo": slug, "commit": full, "files": len(files), "questions": len(lines), "kept": kept,
                       "dropped_no_gold_file": len(lines) - kept}
    return questions, stats


# --- lorebase retrieval-eval files ----------------------------------------------------------------


def retrieval_files(datasets: Path, out: Path) -> dict[str, int]:
    """datasets/eval's public sets in lorebase's retrieval question format, under out/retrieval/."""
    (out / "retrieval").mkdir(parents=True, exist_ok=True)
    counts = {}
    meetings = [json.loads(x) for x in (datasets / "qmsum-dev.jsonl").read_text().splitlines() if x.strip()]
    with (out / "retrieval" / "qmsum-dev.jsonl").open("w") as f:
        for q in meetings:
            gold = [{"lecture": f"meetings/{q['meeting']}", "start": s, "end": e} for s, e in q["gold_spans"]]
            f.write(json.dumps({"id": q["id"], "question": q["question"], "kind": "transcript", "gold": gold,
                                "answer": q["answer"]}) + "\n")
    counts["qmsum-dev"] = len(meetings)
    tuning = out / "qmsum-tuning.jsonl"
    if tuning.exists():  # for `lorebase eval retrieval FILE` in a home where tuning-meetings/ was ingested
        rows = [json.loads(x) for x in tuning.read_text().splitlines() if x.strip()]
        with (out / "retrieval" / "qmsum-tuning.jsonl").open("w") as f:
            for q in rows:
                lecture = f"tuning-meetings/{q['meeting']}"
                gold = [{"lecture": lecture, "start": s, "end": e} for s, e in q["gold_spans"]]
                f.write(json.dumps({"id": q["id"], "question": q["question"], "kind": "transcript",
                                    "filters": {"lecture": lecture}, "gold": gold}) + "\n")
        counts["qmsum-tuning"] = len(rows)
    code = [json.loads(x) for x in (datasets / "sweqa-dev.jsonl").read_text().splitlines() if x.strip()]
    for name in REPOS:
        rows = [q for q in code if q["repo"] == REPOS[name]]
        with (out / "retrieval" / f"sweqa-{name}.jsonl").open("w") as f:
            for q in rows:
                gold = [{"path": p, "repo": q["repo"]} for p in q["gold_files"]]
                f.write(json.dumps({"id": q["id"], "question": q["question"], "kind": "code", "gold": gold,
                                    "answer": q["answer"]}) + "\n")
        counts[f"sweqa-{name}"] = len(rows)
    return counts


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", type=Path, default=Path(os.environ.get("LOREBASE_MIRRORS", "/work/.mirror")),
                    help="folder of git mirrors (default $LOREBASE_MIRRORS or /work/.mirror)")
    ap.add_argument("--out", type=Path, default=ROOT / ".evaldata", help="output folder (default .evaldata/)")
    ap.add_argument("--datasets", type=Path, default=ROOT / "datasets" / "eval", help="where the small question files live")
    ap.add_argument("--write-datasets", action="store_true", help="also rewrite qmsum-dev, qmsum-dev-summaries and sweqa-dev.jsonl")
    ap.add_argument("--tuning-meetings", type=int, default=40,
                    help="other QMSum train meetings written to .evaldata/tuning-meetings for choosing settings (0: none)")
    ap.add_argument("--no-tutorials", action="store_true", help="do not build TutorialVQA even when its mirror is there")
    ap.add_argument("--no-holdout", action="store_true", help="do not build the held-out repositories even when their mirrors are there")
    ap.add_argument("--no-tuning-repos", action="store_true",
                    help="do not build the tuning repositories (streamlink, reflex) even when their mirrors are there")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    qmsum = find_mirror(args.mirrors, QMSUM)
    sweqa = find_mirror(args.mirrors, SWEQA)
    print(f"meetings from {qmsum} ...", file=sys.stderr)
    specific, summaries, meeting_stats = build_meetings(qmsum, out)
    tuning = build_tuning(qmsum, out, args.tuning_meetings) if args.tuning_meetings else 0
    print(f"repositories from {args.mirrors} ...", file=sys.stderr)
    code, repo_stats = build_code(sweqa, args.mirrors, out)
    if args.write_datasets:
        write_jsonl(args.datasets / "qmsum-dev.jsonl", specific)
        write_jsonl(args.datasets / "qmsum-dev-summaries.jsonl", summaries)
        write_jsonl(args.datasets / "sweqa-dev.jsonl", code)
    counts = retrieval_files(args.datasets, out)
    extra: dict[str, dict] = {}
    for key, repos, folder, skip in (("holdout", HOLDOUT_REPOS, "holdout-repos", args.no_holdout),
                                     ("tuning", TUNING_REPOS, "tuning-repos", args.no_tuning_repos)):
        extra[key] = {"built": False}
        if skip:
            continue
        try:
            rows, stats = build_code(sweqa, args.mirrors, out, repos, folder)
        except SystemExit as e:  # a mirror is missing: these sets are optional
            print(f"{folder} not built: {e}", file=sys.stderr)
        else:
            extra[key] = {"built": True, "repos": stats, "questions": len(rows)}
            if args.write_datasets:
                write_jsonl(args.datasets / f"sweqa-{key}.jsonl", rows)
    tutorials: dict = {"built": False}
    if not args.no_tutorials:
        try:
            mirror = find_mirror(args.mirrors, TUTORIALVQA)
        except SystemExit as e:
            print(f"TutorialVQA not built: {e}", file=sys.stderr)
        else:
            rows, stats = build_tutorials(mirror, out)
            tutorials = {"built": True, "repo": TUTORIALVQA, "commit": git(["rev-parse", "HEAD"], cwd=mirror).strip(),
                         "licence": "none stated; built locally, never committed", "dev_questions": len(rows), **stats}
    manifest = {
        "qmsum": {"repo": QMSUM, "commit": git(["rev-parse", "HEAD"], cwd=qmsum).strip(), "meetings": meeting_stats,
                  "words_per_second": WORDS_PER_SECOND, "pause_s": PAUSE_S, "min_turn_s": MIN_TURN_S,
                  "max_gold_share": MAX_GOLD_SHARE, "specific_questions": len(specific), "summaries": len(summaries),
                  "tuning_meetings": args.tuning_meetings, "tuning_questions": tuning},
        "sweqa": {"repo": SWEQA, "commit": git(["rev-parse", "HEAD"], cwd=sweqa).strip(), "repos": repo_stats},
        "retrieval_files": counts,
        "tutorialvqa": tutorials,
        "holdout": extra["holdout"],
        "tuning_repos": extra["tuning"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
