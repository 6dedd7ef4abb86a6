"""Does a generator know what a repository's code is called? A probe for query expansion.

    .venv/bin/python bench/bench_query_expansion.py MODEL_FOLDER QUESTIONS.jsonl [--limit 5] [--ask names|files]

SWE-QA questions describe code in other words ("the ASCII-only encoding control parameter in the
framework's JSON serialization provider" for `ensure_ascii` of `DefaultJSONProvider`). If the
model had learnt the repository from public code, the names it gives could be searched as a second
BM25 query. For each question (the first `--limit` of the file), the model (a Hugging Face folder,
e.g. a prepared `generator-small` or `generator-base`; transformers, bf16, greedy, 60 new tokens)
is asked for the files, classes and functions that hold the answer (`--ask files`) or the
identifiers the question describes (`--ask names`). Prints each reply beside the gold files and the
seconds it took; reading them says whether the names are real.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import median
from typing import Any

ASKS = {
    "files": "Which source files, classes and functions of this repository hold the answer? "
             "Reply with at most 6 names (file paths or identifiers), one per line, nothing else.",
    "names": "Which classes, functions and attributes of this repository does the question describe? "
             "Reply with their names as they are written in the code, at most 6, one per line, nothing else.",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a Hugging Face model folder")
    ap.add_argument("questions", type=Path, help="SWE-QA questions (.jsonl with repo, question, gold_files)")
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--ask", choices=sorted(ASKS), default="files")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).eval()
    rows = [json.loads(line) for line in args.questions.open() if line.strip()][: args.limit]
    seconds = []
    for r in rows:
        messages = [
            {"role": "system", "content": "You know the source code of popular open-source Python projects."},
            {"role": "user", "content": f"Repository: {r['repo']}\nQuestion: {r['question']}\n\n{ASKS[args.ask]}"},
        ]
        encoded: Any = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = encoded["input_ids"]
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=60, do_sample=False)
        seconds.append(time.perf_counter() - t0)
        reply = str(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
        print(json.dumps({"id": r["id"], "seconds": round(seconds[-1], 1), "gold_files": r.get("gold_files"),
                          "reply": [line.strip() for line in reply.splitlines() if line.strip()]}), flush=True)
    print(f"{args.model.name}, --ask {args.ask}: {len(rows)} questions, median {median(seconds):.1f} s a question")


if __name__ == "__main__":
    main()
