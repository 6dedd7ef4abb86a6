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

Preference tuning (DPO) instead of imitation: answer each query several times (`answer --passes 3`,
the first pass as served, the others sampled at `--temperature`; the passes run side by side so the
server batches them), pair a good and a bad answer to the same prompt, and train on the pairs:

    ... bench_self_distill.py answer .evaldata/qmsum-tuning.jsonl answers.json --passes 3
    ... bench_self_distill.py pairs answers.json pairs.jsonl        # lorebase/finetune/preference.py
    ... bench_self_distill.py dpo pairs.jsonl ADAPTER_FOLDER        # lorebase/finetune/preference_training.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def answer(
    questions: Path, out: Path, folder: str, concurrency: int, passes: int = 1, temperature: float = 0.8, batch: int = 0
) -> None:
    from lorebase.cli.scaffold import running_services
    from lorebase.eval.answers import AnswerBench, load_answer_questions, summarize_rows
    from lorebase.finetune.public_guard import dev_set_paths, public_questions
    from lorebase.finetune.qa_drafts import question_hash
    from lorebase.generation.backend import GenerationRequest
    from lorebase.index.atomic_files import write_atomic
    from lorebase.settings import load_settings

    banned = public_questions(dev_set_paths(load_settings()))
    qs = [q for q in load_answer_questions(questions) if question_hash(q.question) not in banned]
    for q in qs:
        q.lecture = f"{folder}/{q.meeting}"
    # A long run is written after each batch of queries (atomically: a crash mid-write keeps the last batch),
    # and a rerun goes on from the queries already answered.
    records: list[dict[str, Any]] = json.loads(out.read_text())["records"] if out.exists() else []
    done_before = {r["id"] for r in records}
    qs = [q for q in qs if q.id not in done_before]
    if done_before:
        print(f"{len(done_before)} queries already answered in {out}; {len(qs)} to go", file=sys.stderr)
    prompts: dict[str, list[dict[str, str]]] = {}
    written: dict[tuple[str, int], str] = {}  # the model's own text per prompt and pass, before the check quoted or trimmed it
    current: contextvars.ContextVar[int] = contextvars.ContextVar("current", default=0)

    def save() -> None:
        first = [r for r in records if r["pass"] == 0]
        write_atomic(out, json.dumps({"summary": summarize_rows(first), "records": records}, indent=1, default=str).encode())

    async def go() -> None:
        async with running_services(generator=True) as svc:
            gen = svc.conversation.generator
            assert gen is not None
            served = gen.stream

            async def stream(req: GenerationRequest) -> Any:  # keep each prompt exactly as served
                user = req.messages[-1]["content"]
                prompts.setdefault(user, req.messages)
                parts: list[str] = []
                async for d in served(req):
                    parts.append(d.text)
                    yield d
                written[(user, current.get())] = "".join(parts)

            gen.stream = stream  # type: ignore[method-assign]
            bench = AnswerBench(svc.conversation, concurrency=concurrency)
            done = [0] * passes

            async def one_pass(p: int, qs: list[Any]) -> list[dict[str, Any]]:
                # Pass 0 as served (the settings' temperature), the others sampled. The passes run side by side,
                # so the server batches them and meets each prompt close together (its prefix cache can reuse it).
                current.set(p)

                def progress(m: str) -> None:
                    done[p] += 1
                    print(f"\r{' '.join(f'pass {i + 1}: {n}/{len(qs)}' for i, n in enumerate(done))}", end="",
                          file=sys.stderr, flush=True)

                rows = await bench.run(qs, progress=progress, temperature=temperature if p else None)
                for r in rows:
                    user = next((u for u in prompts if f"Question: {r['question']}\n" in u), None)
                    r.update({"pass": p, "messages": prompts.get(user or ""), "written": written.get((user or "", p), "")})
                return rows

            size = batch or len(qs) or 1
            for start in range(0, len(qs), size):
                part = qs[start:start + size]
                done[:] = [0] * passes
                runs = await asyncio.gather(*(one_pass(p, part) for p in range(passes)))
                records.extend(r for rows in runs for r in rows)
                save()
                print(f"\n{len(records) // passes} queries answered, saved to {out}", file=sys.stderr, flush=True)

    if qs:
        asyncio.run(go())
    save()
    print(json.dumps(summarize_rows([r for r in records if r["pass"] == 0])))


def train(answers: Path, out: Path) -> None:
    from lorebase.finetune import training
    from lorebase.finetune.adapter_training import train_config
    from lorebase.finetune.preference import imitation_rows, target
    from lorebase.settings import load_settings

    records = [r for r in json.loads(answers.read_text())["records"] if int(r.get("pass", 0)) == 0]
    rows = imitation_rows(records)
    modes = {m: sum(1 for r in records if target(r) and r["mode"] == m) for m in ("generated", "extractive")}
    print(json.dumps({"answers": len(records), "examples": len(rows), **modes}), file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = training.main(train_config(load_settings(), out), rows)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # the trainer's checkpoints; the adapter is beside them
    print(json.dumps({"examples": result.examples, "steps": result.steps, "seconds": result.seconds,
                      "final_loss": result.final_loss, "precision": result.precision}))


def pairs(answers: Path, out: Path) -> None:
    from lorebase.finetune.preference import PairStats, preference_pairs

    stats = PairStats()
    rows = preference_pairs(json.loads(answers.read_text())["records"], stats)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(json.dumps(stats.__dict__))


def dpo(pairs_file: Path, out: Path, max_steps: int = -1) -> None:
    from lorebase.finetune import preference_training
    from lorebase.finetune.adapter_training import train_config
    from lorebase.settings import load_settings

    rows = [json.loads(x) for x in pairs_file.read_text().splitlines() if x.strip()]
    out.mkdir(parents=True, exist_ok=True)
    result = preference_training.main(train_config(load_settings(), out, max_steps=max_steps), rows)
    shutil.rmtree(out / "trainer", ignore_errors=True)
    ft = load_settings().finetune
    seen = min(result.examples, result.steps * ft.batch_size * ft.grad_accum)  # --max-steps can stop inside the epoch
    print(json.dumps({"pairs": result.examples, "pairs_seen": seen, "steps": result.steps, "seconds": result.seconds,
                      "final_loss": result.final_loss, "precision": result.precision}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    a = sub.add_parser("answer", help="answer the queries with the served model, keeping each prompt")
    a.add_argument("questions", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--folder", default="tuning-meetings", help="the folder the meetings were ingested from")
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--passes", type=int, default=1, help="answer each query this many times: once as served, then sampled")
    a.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the passes after the first")
    a.add_argument("--batch", type=int, default=0, help="save after each batch of this many queries (0: once, at the end)")
    t = sub.add_parser("train", help="train a LoRA adapter on the verified, gold-citing answers")
    t.add_argument("answers", type=Path)
    t.add_argument("out", type=Path, help="the adapter folder to write")
    pr = sub.add_parser("pairs", help="preference pairs: a good and a bad answer to the same prompt, across passes")
    pr.add_argument("answers", type=Path)
    pr.add_argument("out", type=Path, help="the pairs file to write (JSON lines)")
    d = sub.add_parser("dpo", help="train a LoRA adapter on the preference pairs (DPO)")
    d.add_argument("pairs", type=Path)
    d.add_argument("out", type=Path, help="the adapter folder to write")
    d.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: the epochs)")
    args = ap.parse_args(argv)
    if args.step == "answer":
        answer(args.questions, args.out, args.folder, args.concurrency, args.passes, args.temperature, args.batch)
    elif args.step == "pairs":
        pairs(args.answers, args.out)
    elif args.step == "dpo":
        dpo(args.pairs, args.out, args.max_steps)
    else:
        train(args.answers, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
