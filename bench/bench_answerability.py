"""Can a generator tell that the evidence the answer path selects does not hold the answer?

For the SWE-QA dev questions (the first 8 of each repository), the first 24 QMSum dev questions
and the unanswerable dev questions, it retrieves and selects evidence exactly as the answer path
does (scoped to the question's repository or meeting). Questions the subject-word check already
abstains on, or whose evidence is not relevant, are skipped. For the rest it asks the generator
"Do the sources above contain the answer to this question?" and reads p(yes) from the next-token
log-probabilities (yes against no among the top 10). It prints p(yes) per set, answerable against
unanswerable, and how many of each fall below 0.5.

    LOREBASE_HOME=H .venv/bin/python bench/bench_answerability.py --profile small [--prompt own|answer]

`--profile` starts that generator profile under vLLM (bf16 where the CPU has it) for the run;
`--url URL --model NAME` asks a server already running instead. `--prompt answer` uses the served
answer prompt's system text (which lets vLLM reuse its prefix), `own` a yes/no instruction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OWN_SYSTEM = ("You check whether numbered sources contain the answer to a question about a codebase or a meeting. "
              "Reply with one word: yes or no.")
ASK = "Do the sources above contain the answer to this question? Reply yes or no."


def evidence_rows(per_repo: int, meetings: int) -> list[dict[str, Any]]:
    """Each dev question with the evidence the answer path would show, or why it is skipped."""
    from lorebase.citations import cite
    from lorebase.eval.answers import load_answer_questions, scope
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.prompts import Evidence, format_source
    from lorebase.services import Services
    from lorebase.settings import Settings

    settings = Settings()
    svc = Services.build(settings)
    answers = AnswerService(settings, svc.search, None)  # type: ignore[arg-type]  # selection only, no generator
    sets = ROOT / "datasets/eval"
    seen: dict[str, int] = {}
    questions = []
    for q in load_answer_questions(sets / "sweqa-dev.jsonl"):
        if seen.get(q.repo or "", 0) < per_repo:
            seen[q.repo or ""] = seen.get(q.repo or "", 0) + 1
            questions.append(("code", True, q))
    questions += [("meetings", True, q) for q in load_answer_questions(sets / "qmsum-dev.jsonl")[:meetings]]
    questions += [("code" if q.repo else "meetings", False, q) for q in load_answer_questions(sets / "unanswerable-dev.jsonl")]
    rows = []
    for kind, answerable, q in questions:
        hits, unmentioned = svc.search.retrieve_checked(q.question, None, scope(q), check=True)
        cites = [cite(h.source, h.chunk, f"S{i}", score=round(h.score, 6)) for i, h in enumerate(hits, start=1)]
        sel = answers._select(q.question, hits, cites) if hits and not unmentioned else []
        sources = "\n\n".join(format_source(Evidence(s.citation.model_copy(update={"snippet": s.text}), s.text)) for s in sel)
        rows.append({"id": q.id, "kind": kind, "answerable": answerable, "question": q.question,
                     "skipped": "subject never mentioned" if unmentioned else
                                None if sel and answers._relevant(sel) else "nothing relevant",
                     "sources": sources})
    return rows


def p_yes(url: str, model: str, system: str, rows: list[dict[str, Any]]) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="none")
    for r in rows:
        if r["skipped"]:
            continue
        user = f"Sources:\n\n{r['sources']}\n\nQuestion: {r['question']}\n\n{ASK}"
        resp = client.chat.completions.create(model=model, messages=[{"role": "system", "content": system},
                                                                     {"role": "user", "content": user}],
                                              max_tokens=1, temperature=0, logprobs=True, top_logprobs=10)
        logprobs = resp.choices[0].logprobs
        assert logprobs is not None and logprobs.content, "the server returned no log-probabilities"
        top = logprobs.content[0].top_logprobs
        yes = sum(math.exp(t.logprob) for t in top if t.token.strip().lower() == "yes")
        no = sum(math.exp(t.logprob) for t in top if t.token.strip().lower() == "no")
        r["p_yes"] = yes / (yes + no) if yes + no else None


async def serve(profile: str) -> Any:
    from lorebase.generation.vllm_server import VLLMServer
    from lorebase.offline_models import generator_path
    from lorebase.settings import Settings

    os.environ["LOREBASE_MODELS__GENERATOR"] = profile  # the profile, with every other setting as configured
    settings = Settings()
    server = VLLMServer.from_settings(settings, model_dir=generator_path(settings), served_name="judge", max_model_len=4096)
    await server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", help="a generator profile to serve for the run (tiny, small, base or a folder)")
    ap.add_argument("--url", help="a running OpenAI-compatible server instead")
    ap.add_argument("--model", default="judge")
    ap.add_argument("--prompt", choices=["own", "answer"], default="own")
    ap.add_argument("--per-repo", type=int, default=8)
    ap.add_argument("--meetings", type=int, default=24)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if not (args.profile or args.url):
        ap.error("give --profile or --url")
    from lorebase.generation.prompts import ANSWER_SYSTEM

    rows = evidence_rows(args.per_repo, args.meetings)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(serve(args.profile)) if args.profile else None
    try:
        p_yes(server.url if server else args.url, args.model, OWN_SYSTEM if args.prompt == "own" else ANSWER_SYSTEM, rows)
    finally:
        if server is not None:
            loop.run_until_complete(server.stop())
    print("| set | questions | p(yes) range | below 0.5 |")
    print("|---|---:|---|---:|")
    for kind in ("code", "meetings"):
        for answerable in (True, False):
            ps = sorted(r["p_yes"] for r in rows if r["kind"] == kind and r["answerable"] is answerable
                        and r.get("p_yes") is not None)
            if ps:
                label = f"{kind}, {'answerable' if answerable else 'unanswerable'}"
                print(f"| {label} | {len(ps)} | {ps[0]:.2f}-{ps[-1]:.2f} | {sum(p < 0.5 for p in ps)} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
