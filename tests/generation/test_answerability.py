"""Which answerability judge a data home gets, and its score on a real (tiny, random) model."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import ModelNotAvailable
from lorebase.generation.answerability import AnswerabilityJudge, messages, open_answerability_judge
from lorebase.generator_profiles import PROFILES
from lorebase.offline_models import builtin_generator_dir
from lorebase.settings import Settings, load_settings


def _settings(tmp_path: Path, judge: str, generator: str = "small") -> Settings:
    return load_settings(home=tmp_path / "h", models={"generator": generator}, answer={"answerability_judge": judge})


def _prepare(settings: Settings, name: str) -> Path:
    folder = builtin_generator_dir(settings, PROFILES[name])
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_auto_judges_with_the_base_profile_only_once_it_is_prepared(tmp_path: Path) -> None:
    assert open_answerability_judge(_settings(tmp_path, "auto")) is None  # nothing larger is prepared: no judge
    assert open_answerability_judge(_settings(tmp_path, "auto", "tiny")) is None
    _prepare(_settings(tmp_path, "auto"), "small")
    # small reading the chunks scores at chance (AUC 0.54): auto never makes it the judge
    assert open_answerability_judge(_settings(tmp_path, "auto", "tiny")) is None
    base = _prepare(_settings(tmp_path, "auto"), "base")
    judge = open_answerability_judge(_settings(tmp_path, "auto"))
    assert judge is not None and (judge.name, judge.folder) == ("base", base)
    assert open_answerability_judge(_settings(tmp_path, "auto", "base")) is None  # nothing larger than itself
    assert open_answerability_judge(_settings(tmp_path, "off")) is None
    # off unless asked for: it costs 3 GB and triples the time to first token under load
    assert open_answerability_judge(load_settings(home=tmp_path / "h", models={"generator": "small"})) is None


def test_a_named_judge_that_is_not_there_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match=r"answer\.answerability_judge 'base'.*models prepare"):
        open_answerability_judge(_settings(tmp_path, "base"))
    with pytest.raises(ModelNotAvailable, match="Hugging Face model folder"):
        open_answerability_judge(_settings(tmp_path, str(tmp_path / "nowhere")))


def test_a_model_folder_scores_yes_against_no_from_one_forward_pass(tmp_path: Path, tiny_llama: Path) -> None:
    judge = open_answerability_judge(_settings(tmp_path, str(tiny_llama)))
    assert isinstance(judge, AnswerabilityJudge) and judge.name == tiny_llama.name
    q = "How is a failed job retried?"
    a = judge.score_text(q, "[jobs/retry.py]\ndef retry_delay(attempt): return 30 * 2 ** (attempt - 1)")
    assert a == judge.score_text(q, "[jobs/retry.py]\ndef retry_delay(attempt): return 30 * 2 ** (attempt - 1)")
    b = judge.score_text(q, "[README.md]\nA tiny job scheduler.")
    assert a != b  # the excerpts are read: a different text moves the score
    # log-odds of the two answer words, computed by hand from the model's next-token distribution
    import torch

    tok, model = judge._tok, judge._model
    prompt = tok.apply_chat_template(messages(q, "[README.md]\nA tiny job scheduler."), add_generation_prompt=True,
                                     tokenize=False)
    with torch.no_grad():
        logp = torch.log_softmax(model(tok(prompt, return_tensors="pt").input_ids).logits[0, -1].float(), -1)
    yes = {tok.encode(w, add_special_tokens=False)[0] for w in (" yes", "yes", "Yes")}
    no = {tok.encode(w, add_special_tokens=False)[0] for w in (" no", "no", "No")}
    expected = float(torch.logsumexp(logp[sorted(yes)], 0) - torch.logsumexp(logp[sorted(no)], 0))
    assert b == pytest.approx(expected, abs=1e-4)


def test_models_list_says_whether_repository_questions_are_judged_and_by_what(tmp_path: Path) -> None:
    from lorebase.offline_models import available

    def row(settings: Settings):  # type: ignore[no-untyped-def]
        return next(i for i in available(settings) if i.role == "answerability")

    off = row(_settings(tmp_path, "auto"))
    assert off.ready and off.path is None and off.detail.startswith("off")  # a choice, not a fault
    base = _prepare(_settings(tmp_path, "auto"), "base")
    assert row(_settings(tmp_path, "auto")).path == base
    missing = row(_settings(tmp_path, str(tmp_path / "nowhere")))
    assert not missing.ready and "answer.answerability_judge" in missing.detail


@pytest.mark.asyncio
async def test_questions_wait_for_the_judge_on_its_own_thread_not_the_shared_pool(tiny_llama: Path) -> None:
    import asyncio
    import threading

    judge = AnswerabilityJudge("t", tiny_llama)
    ran: list[str] = []
    judge.score = lambda q, hits: ran.append(threading.current_thread().name) or 0.0  # type: ignore[method-assign,func-returns-value]
    assert await asyncio.gather(*(judge.ascore(f"q{i}", []) for i in range(8))) == [0.0] * 8
    assert len(ran) == 8 and {n.split("_")[0] for n in ran} == {"answerability"}
