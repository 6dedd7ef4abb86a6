"""Rejection-sampling self-distillation: a LoRA adapter trained on its base model's own good answers.

Runs 1-5 of the fine-tuning section trained on targets written for the model (template answers,
quoted gold sentences); on questions people wrote the adapters came out worse than their base. This
asks the other way round: answer QMSum *train* queries through the served answer path (retrieval,
evidence lines, the base model, the support check), keep the answers that are verified and cite a
gold span, and train on exactly those prompts and answers. The targets are then the base model's
own best behaviour, in the served prompt, with nothing written by hand.

    export LOREBASE_HOME=<home with .evaldata/tuning-meetings ingested>   # as for make_qmsum_pairs.py
    LOREBASE_MODELS__GENERATOR=small .venv/bin/python bench/bench_self_distill.py answer .evaldata/qmsum-tuning.jsonl answers.json
    LOREBASE_MODELS__GENERATOR=small .venv/bin/python bench/bench_self_distill.py train answers.json ADAPTER_FOLDER

then `bench/bench_answers.py --rows small,small+sd --adapter sd=ADAPTER_FOLDER --sets meetings`
compares the adapter with its base on the dev meetings, which it never saw. An extractive answer
(the fallback's quoted lines) is trained as its lines, without the quote marks and speaker labels.
Queries of the public dev sets are refused (`finetune/public_guard.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def answer(questions: Path, out: Path, folder: str, concurrency: int) -> None:
    from lorebase.cli.scaffold import running_services
    from lorebase.eval.answers import AnswerBench, load_answer_questions, summarize_rows
    from lorebase.finetune.public_guard import dev_set_paths, public_questions
    from lorebase.finetune.qa_drafts import question_hash
    from lorebase.generation.backend import GenerationRequest
    from lorebase.settings import load_settings

    banned = public_questions(dev_set_paths(load_settings()))
    qs = [q for q in load_answer_questions(questions) if question_hash(q.question) not in banned]
    for q in qs:
        q.lecture = f"{folder}/{q.meeting}"
    prompts: dict[str, list[dict[str, str]]] = {}

    async def go() -> list[dict[str, Any]]:
        async with running_services(generator=True) as svc:
            gen = svc.conversation.generator
            assert gen is not None
            served = gen.stream

            def stream(req: GenerationRequest) -> Any:  # keep each prompt exactly as served
                prompts.setdefault(req.messages[-1]["content"], req.messages)
                return served(req)

            gen.stream = stream  # type: ignore[method-assign]
            bench = AnswerBench(svc.conversation, concurrency=concurrency)
            return await bench.run(qs, progress=lambda m: print(f"\r{m}", end="", file=sys.stderr, flush=True))

    records = asyncio.run(go())
    for r in records:
        r["messages"] = next((m for user, m in prompts.items() if f"Question: {r['question']}\n" in user), None)
    out.write_text(json.dumps({"summary": summarize_rows(records), "records": records}, indent=1, default=str))
    print(json.dumps(summarize_rows(records)))


def target(record: dict[str, Any]) -> str | None:
    """What to train on: a verified answer that cites gold, as the model would write it."""
    if not (record.get("verified") and record.get("cites_gold") and record.get("messages")):
        return None
    if record["mode"] == "generated":
        return str(record["answer"])
    if record["mode"] == "extractive":  # "The sources say:\n> Name: line [S1]" -> "line [S1]"
        lines = [x[2:] for x in str(record["answer"]).splitlines() if x.startswith("> ")]
        return " ".join(re.sub(r"^[^:\n]{1,40}: ", "", x) for x in lines) or None
    return None


def train(answers: Path, out: Path) -> None:
    from lorebase.finetune import training
    from lorebase.finetune.adapter_training import train_config
    from lorebase.settings import load_settings

    records = json.loads(answers.read_text())["records"]
    rows = [{"prompt": r["messages"], "completion": [{"role": "assistant", "content": t}]}
            for r in records if (t := target(r))]
    modes = {m: sum(1 for r in records if target(r) and r["mode"] == m) for m in ("generated", "extractive")}
    print(json.dumps({"answers": len(records), "examples": len(rows), **modes}), file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = training.main(train_config(load_settings(), out), rows)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # the trainer's checkpoints; the adapter is beside them
    print(json.dumps({"examples": result.examples, "steps": result.steps, "seconds": result.seconds,
                      "final_loss": result.final_loss, "precision": result.precision}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    a = sub.add_parser("answer", help="answer the queries with the served model, keeping each prompt")
    a.add_argument("questions", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--folder", default="tuning-meetings", help="the folder the meetings were ingested from")
    a.add_argument("--concurrency", type=int, default=8)
    t = sub.add_parser("train", help="train a LoRA adapter on the verified, gold-citing answers")
    t.add_argument("answers", type=Path)
    t.add_argument("out", type=Path, help="the adapter folder to write")
    args = ap.parse_args(argv)
    if args.step == "answer":
        answer(args.questions, args.out, args.folder, args.concurrency)
    else:
        train(args.answers, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
