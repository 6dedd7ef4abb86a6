"""Build the labelled set for the support check: real sentences from real sources, and perturbed copies.

    .venv/bin/python bench/make_support_set.py [--evaldata .evaldata] [--out datasets/eval/support-check.jsonl]

Sources (rebuilt by bench/build_evalsets.py): the prose of pallets/flask's docs (BSD-3-Clause) and the
QMSum meetings written as SRT (MIT; AMI/ICSI transcripts CC BY 4.0). For each picked sentence the
evidence is the sentence with up to two neighbours on each side, as a retrieved chunk would show it.

Labels: `supported` rows are the sentence as written, trimmed at a comma (a shorter claim the
source still makes), or reworded (fillers dropped, contractions written out; no longer a substring). `negated`, `number` and `entity` rows change the meaning: a negation added or
removed, a number changed, a name swapped for another name from the same document. Deterministic
(seeded), so the committed file can be rebuilt exactly.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUX = re.compile(r"\b(is|are|was|were|can|could|should|will|would|must|has|have|does|do|did)\b")
NEG = re.compile(r"\b(not|never|no longer)\s+|n't\b")
NUM = re.compile(r"(?<![\w.])\d+(?![\w.])")
NAME = re.compile(r"`[^`]+`|\b[A-Za-z_]+(?:[._][A-Za-z0-9_]+)+\b|(?<=\s)[A-Z][a-z]{2,}\b")
WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10, "twelve": 12, "twenty": 20, "fifty": 50, "hundred": 100}


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z`])", " ".join(text.split()))
    return [p.strip() for p in parts if 40 <= len(p.strip()) <= 240 and p.strip()[-1] in ".!?"]


def rst_prose(path: Path) -> list[str]:
    keep: list[str] = []
    for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
        lines = block.strip().splitlines()
        if not lines or any(ln.startswith((" ", "\t", "..", ":", "=", "-", "*", "~", ">>>")) for ln in lines):
            continue  # code, directives, headings, lists
        keep.append(" ".join(lines))
    return [s for b in keep for s in sentences(b)]


def srt_turns(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    cues = [c.split("\n", 2)[2] for c in re.split(r"\n\s*\n", text.strip()) if c.count("\n") >= 2]
    turns: list[str] = []
    for cue in cues:
        speaker, _, body = cue.partition(": ")
        if turns and turns[-1].startswith(speaker + ": "):
            turns[-1] += " " + " ".join(body.split())
        else:
            turns.append(f"{speaker}: {' '.join(body.split())}")
    out: list[str] = []
    for t in turns:
        _, _, body = t.partition(": ")
        out.extend(sentences(body))
    return out


def negate(s: str) -> str | None:
    if NEG.search(s):
        out = NEG.sub(lambda m: "" if m.group(0).strip() != "n't" else "", s, count=1)
        return re.sub(r"\s{2,}", " ", out) if out != s else None
    m = AUX.search(s)
    return s[:m.end()] + " not" + s[m.end():] if m else None


def change_number(s: str, rng: random.Random) -> str | None:
    m = NUM.search(s)
    if m:
        n = int(m.group(0))
        return s[:m.start()] + str(n + rng.choice([1, 2, 3, 10])) + s[m.end():]
    for w, n in WORDS.items():
        m2 = re.search(rf"\b{w}\b", s, flags=re.I)
        if m2:
            return s[:m2.start()] + str(n + rng.choice([1, 2, 3])) + s[m2.end():]
    return None


def swap_entity(s: str, pool: list[str], rng: random.Random) -> str | None:
    names = [m for m in NAME.finditer(s) if m.start() > 0]
    if not names:
        return None
    m = rng.choice(names)
    others = [p for p in pool if p.lower() != m.group(0).lower() and p.lower() not in s.lower()]
    if not others:
        return None
    return s[:m.start()] + rng.choice(others) + s[m.end():]


def trim(s: str) -> str | None:
    if ", " not in s:
        return None
    head, _, tail = s.partition(", ")
    cand = tail[0].upper() + tail[1:] if len(tail) > 30 else head.rstrip(",") + "."
    return cand if len(cand) >= 30 else None


FILLERS = re.compile(r"\b(also|still|just|usually|really|actually|simply|basically|uh|um|uh-huh|so|very|quite)\b,?\s*", re.I)
CONTRACTIONS = {"don't": "do not", "doesn't": "does not", "isn't": "is not", "can't": "cannot", "won't": "will not",
                "it's": "it is", "you're": "you are", "we're": "we are", "they're": "they are", "that's": "that is",
                "aren't": "are not", "didn't": "did not", "I'm": "I am", "you'll": "you will"}


def reword(s: str) -> str | None:
    """The same claim in other words: fillers dropped, contractions written out (not a substring of the source)."""
    out = FILLERS.sub("", s)
    for a, b in CONTRACTIONS.items():
        out = re.sub(rf"\b{re.escape(a)}\b", b, out)
    out = re.sub(r"\s{2,}", " ", out).strip()
    return out[0].upper() + out[1:] if out != s and len(out) >= 30 else None


def rows_for(doc: str, sents: list[str], rng: random.Random, per_doc: int) -> list[dict]:
    pool = sorted({m.group(0) for s in sents for m in NAME.finditer(s)})
    out: list[dict] = []
    idx = list(range(len(sents)))
    rng.shuffle(idx)
    for i in idx[:per_doc]:
        s = sents[i]
        evidence = " ".join(sents[max(0, i - 2): i + 3])
        variants = [("supported", s), ("supported", trim(s)), ("supported", reword(s)), ("negated", negate(s)),
                    ("number", change_number(s, rng)), ("entity", swap_entity(s, pool, rng))]
        for label, claim in variants:
            if claim and claim != s or label == "supported" and claim:
                out.append({"doc": doc, "label": label, "claim": claim, "evidence": evidence})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--out", type=Path, default=ROOT / "datasets/eval/support-check.jsonl")
    ap.add_argument("--per-doc", type=int, default=12)
    args = ap.parse_args()
    rng = random.Random(20261204)
    rows: list[dict] = []
    docs = sorted((args.evaldata / "repos/flask/docs").glob("*.rst"))
    for p in docs:
        sents = rst_prose(p)
        if len(sents) >= 5:
            rows.extend(rows_for(f"flask/docs/{p.name}", sents, rng, args.per_doc // 2))
    for p in sorted((args.evaldata / "meetings").glob("*.srt")):
        rows.extend(rows_for(f"qmsum/{p.stem}", srt_turns(p), rng, args.per_doc * 2))
    with open(args.out, "w") as f:
        for i, r in enumerate(rows, start=1):
            f.write(json.dumps({"id": f"support-{i}", **r}) + "\n")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    print(f"{len(rows)} rows -> {args.out}: {counts}")


if __name__ == "__main__":
    main()
