"""The scheduled evaluation: `lorebase eval` on the configured set, recorded as an EvalRun, with a
generator of its own when the process runs none, and with the server's (called across event
loops) inside `lorebase serve`."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase.generation.backend import GenerationRequest
from lorebase.scheduler.jobs import JobContext
from lorebase.scheduler.pipeline import JobRunner
from lorebase.services import Services
from lorebase.store.models import EvalRun
from tests.scheduler.conftest import Corpus, scheduler_settings

pytestmark = pytest.mark.slow


def test_the_eval_job_records_a_run_with_its_own_generator_and_with_the_servers(tmp_path: Path, corpus: Corpus,
                                                                                tiny_llama: Path) -> None:
    eval_set = tmp_path / "set.jsonl"
    eval_set.write_text(json.dumps({
        "id": "q1", "question": "How many times is a failed job retried?",
        "gold": [{"lecture": "lectures/scheduler", "start": 10, "end": 19}],
        "answer": "A failed job is retried three times with exponential backoff."}) + "\n")
    settings = scheduler_settings(
        tmp_path / "home", corpus.sources()[1:], scheduler={"eval_set": str(eval_set), "eval_judge": False},
        models={"generator": str(tiny_llama)}, generation={"backend": "transformers", "max_new_tokens": 8, "max_model_len": 2048},
        eval={"summaries_set": None},
    )
    svc = Services.build(settings)
    try:
        assert JobRunner(JobContext.of(svc)).run("sync").ok  # the lecture, to be retrieved
        own = JobRunner(JobContext.of(svc)).run("eval")
        assert own.ok and [s.job for s in own.steps] == ["eval"], own.as_dict()
        assert svc.generator is None, "the generator started for the run is not left on the shared services"

        # Inside a server: the generator lives on the server's loop, in another thread.
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(svc.start_generator(), loop).result(timeout=120)
            served = JobRunner(JobContext.of(svc, loop=loop)).run("eval")
            assert served.ok, served.as_dict()
            # The server's generator is still open and still answers on its own loop.
            req = GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=2)
            assert asyncio.run_coroutine_threadsafe(svc.generator.complete(req), loop).result(timeout=60).finish_reason
        finally:
            asyncio.run_coroutine_threadsafe(svc.aclose(), loop).result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

        with svc.store.session() as s:
            runs = list(s.scalars(select(EvalRun).order_by(EvalRun.id)))
        assert [(r.status, r.eval_set) for r in runs] == [("ok", str(eval_set))] * 2
        assert [s.counts["eval_run"] for s in (own.steps[0], served.steps[0])] == [r.id for r in runs]
        assert own.steps[0].counts["questions"] == 1 and "hit@1" in own.steps[0].counts["metrics"]
    finally:
        svc.store.close()


def test_the_embedder_tuning_job_without_pairs_fails_once_saying_what_to_do(home_settings) -> None:  # type: ignore[no-untyped-def]
    svc = Services.build(home_settings)
    try:
        run = JobRunner(JobContext.of(svc)).run("tune_embedder")
        (step,) = run.steps
        assert (step.job, step.status, step.attempts) == ("tune_embedder", "failed", 1)  # bad input: not retried
        assert "generate QA pairs first" in (step.error or "")
    finally:
        svc.store.close()
