"""What precision the answerability judge should run in on this CPU: one forward pass, fp32, bf16 and int8.

The judge (lorebase.generation.answerability) makes one forward pass per question. Loads the model
folder in each precision in turn and times a pass over the same ``--tokens`` tokens (median of
``--rounds``, after one warm-up pass; the last position's logits only, as the judge asks), with
what lorebase's ``resolve_dtype("auto")`` picks here. int8 is the fp32 model with its linear layers
quantised dynamically (tried for the judge, not adopted: it cannot tell answerable questions any
more, docs/benchmarks.md):

    nice -n 5 .venv/bin/python bench/bench_judge_dtype.py --model /work/h-tune/models/generator-small
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import run_header  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a Hugging Face causal LM folder")
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precisions", default="float32,bfloat16,int8", help="which to time, in turn")
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.bench_answerability_judge import int8_linear
    from lorebase.index.embeddings import resolve_dtype

    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok("The retry delay doubles after each failed attempt. " * args.tokens, return_tensors="pt").input_ids[:, : args.tokens]
    seconds: dict[str, float] = {}
    for name in args.precisions.split(","):
        dtype = torch.bfloat16 if name == "bfloat16" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval()
        if name == "int8":
            model = int8_linear(model)
        times = []
        with torch.no_grad():
            model(ids, logits_to_keep=1)
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                model(ids, logits_to_keep=1)
                times.append(time.perf_counter() - t0)
        seconds[name] = round(statistics.median(times), 2)
        del model
    print(json.dumps({**run_header(),
                      "model": args.model.name, "tokens": ids.shape[1], "threads": torch.get_num_threads(),
                      "seconds per pass (median)": seconds,
                      **{f"{n} / float32": round(seconds[n] / seconds["float32"], 2)
                         for n in seconds if n != "float32" and "float32" in seconds},
                      "auto picks": resolve_dtype("auto")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
