"""What precision the answerability judge should run in on this CPU: one forward pass, fp32 against bf16.

The judge (lorebase.generation.answerability) makes one forward pass per question. Loads the model
folder in each precision in turn and times a pass over the same ``--tokens`` tokens (median of
``--rounds``, after one warm-up pass), with what lorebase's ``resolve_dtype("auto")`` picks here:

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
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorebase.index.embeddings import resolve_dtype

    tok = AutoTokenizer.from_pretrained(args.model)
    ids = tok("The retry delay doubles after each failed attempt. " * args.tokens, return_tensors="pt").input_ids[:, : args.tokens]
    seconds: dict[str, float] = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval()
        times = []
        with torch.no_grad():
            model(ids)
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                model(ids)
                times.append(time.perf_counter() - t0)
        seconds[name] = round(statistics.median(times), 2)
        del model
    print(json.dumps({**run_header(),
                      "model": args.model.name, "tokens": ids.shape[1], "threads": torch.get_num_threads(),
                      "seconds per pass (median)": seconds, "bf16 / fp32": round(seconds["bfloat16"] / seconds["float32"], 1),
                      "auto picks": resolve_dtype("auto")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
