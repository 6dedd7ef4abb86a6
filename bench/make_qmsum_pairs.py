"""Training pairs from QMSum's *train* queries, for a LoRA run judged on meetings it never saw.

`lorebase qa generate` makes pairs from the corpus itself (templates, self-instruct). This script
asks whether a LoRA adapter trained on real questions about real meetings answers better on other
real meetings: it writes one validated pair per QMSum train query into a data home that holds the
40 tuning meetings of `bench/build_evalsets.py` (`.evaldata/tuning-meetings/`, none of them a dev
or test meeting), all in the train split. Then `lorebase train --no-gate` trains on them and
`bench/bench_answers.py --rows small,small+NAME --adapter NAME=FOLDER` compares the adapter with
its base on the dev sets.

    export LOREBASE_HOME=/tmp/lora-meet
    .venv/bin/lorebase ingest .evaldata/tuning-meetings
    .venv/bin/python bench/make_qmsum_pairs.py .evaldata/qmsum-tuning.jsonl
    LOREBASE_FINETUNE__CONTEXT_K=5 .venv/bin/lorebase train --no-gate --name qmsum-raft --json

The pair: the query as question; as answer, the one or two sentences of the gold span closest to
the reference answer (MiniLM cosine; only the named speaker's sentences when the query names one;
a second sentence only when it scores within 0.85 of the first; 6-45 words each), each cited
``[S1]``, without the speaker label. QMSum's references are abstractive, so they would fail the
support check that every training target must pass; the sentences they rest on do not. The pair's
chunk is the gold-span chunk holding the best sentence. Queries of the public dev sets are refused
(`finetune/public_guard.py`), and a query from QMSum's test split is an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("queries", type=Path, help="QMSum specific queries as bench/build_evalsets.py writes them (qmsum-tuning.jsonl)")
    ap.add_argument("--folder", default="tuning-meetings", help="the folder the meetings were ingested from")
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from lorebase.citations import cite
    from lorebase.finetune.public_guard import dev_set_paths, public_questions
    from lorebase.finetune.qa_drafts import draft_for, question_hash, with_citation
    from lorebase.generation.evidence import Unit, units_of
    from lorebase.index.speakers import named_speakers
    from lorebase.services import Services
    from lorebase.settings import load_settings
    from lorebase.store.models import QAPair, Source

    svc = Services.build(load_settings())
    embed = svc.search.embedder.embed
    threshold = svc.settings.answer.support_threshold
    banned = public_questions(dev_set_paths(svc.settings))
    counts = {"queries": 0, "written": 0, "dev question": 0, "no meeting": 0, "no gold sentence": 0, "fails the check": 0}

    def in_gold(u: Unit, spans: list[list[float]]) -> bool:
        return any(s <= (u.start_time or 0.0) <= e for s, e in spans)

    with svc.store.session() as s:
        for line in args.queries.read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            counts["queries"] += 1
            if q.get("split") not in ("train", "validation"):
                raise SystemExit(f"{q['id']}: split {q.get('split')!r}; only QMSum train and validation queries may be trained on")
            if question_hash(q["question"]) in banned:
                counts["dev question"] += 1
                continue
            key = f"transcript:{args.folder}/{q['meeting']}"
            src = s.execute(select(Source).where(Source.key == key)).scalar_one_or_none()
            if src is None:
                counts["no meeting"] += 1
                continue
            spans = q["gold_spans"]
            ref = embed([q["answer"]])[0]
            best: tuple[float, object, list[Unit], np.ndarray] | None = None
            for chunk in src.chunks:
                if chunk.start_time is None or not any(chunk.start_time < e and chunk.end_time > st for st, e in spans):
                    continue
                units = [u for u in units_of(cite(src, chunk, "S1"), chunk.text, chunk.meta)
                         if in_gold(u, spans) and 6 <= len(u.text.split()) <= 45]
                named = named_speakers(q["question"], {u.speaker for u in units if u.speaker})
                units = [u for u in units if u.speaker in named] if named else units
                if not units:
                    continue
                scores = embed([u.text for u in units]) @ ref
                if best is None or float(scores.max()) > best[0]:
                    best = (float(scores.max()), chunk, units, scores)
            if best is None:
                counts["no gold sentence"] += 1
                continue
            _, chunk, units, scores = best
            order = np.argsort(-scores).tolist()
            picked = sorted(order[:2] if len(order) > 1 and scores[order[1]] >= 0.85 * scores[order[0]] else order[:1])
            sentences = []
            for i in picked:
                text = units[i].text
                if units[i].speaker and text.startswith(units[i].speaker + ":"):
                    text = text[len(units[i].speaker) + 1:].strip()
                sentences.append(with_citation(text[:1].upper() + text[1:], "S1"))
            draft, ok = draft_for(src, chunk, q["question"], " ".join(sentences), category="transcript.public",  # type: ignore[arg-type]
                                  method="manual", threshold=threshold, extra={"from": f"QMSum query {q['id']}"})
            if not ok:
                counts["fails the check"] += 1
                continue
            s.add(QAPair(question=draft.question, answer=draft.answer, chunk_ids=draft.chunk_ids, source_ids=draft.source_ids,
                         kind=draft.kind, category=draft.category, method=draft.method, validated=True,
                         validation=draft.validation, split="train", provenance=draft.provenance,
                         question_hash=draft.question_hash, source_hash=draft.source_hash))
            counts["written"] += 1
        s.commit()
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
