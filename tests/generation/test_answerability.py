"""Which answerability judge a data home gets, and its score on a real (tiny, random) model."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import ModelNotAvailable
from lorebase.generation.answerability import AnswerabilityJudge, open_answerability_judge
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
    code = "[jobs/retry.py]\ndef retry_delay(attempt): return 30 * 2 ** (attempt - 1)"
    a = judge.score_text(q, code)
    assert a == judge.score_text(q, code)
    assert a != judge.score_text(q, "[README.md]\nA tiny job scheduler.")  # the excerpts are read

    # The score is the log-odds of the answer words as the next token: with logits set by hand, the
    # two yes-tokens at 2.0, the two no-tokens at -1.0 and every other token far below, it is 3.0.
    # (This tokenizer starts " yes" and " no" with the same bare-space piece, which counts for neither.)
    import torch

    assert len(judge._yes) == len(judge._no) == 2 and not set(judge._yes) & set(judge._no)
    logits = torch.full((1, 1, len(judge._tok)), -1e4)
    logits[0, 0, judge._yes], logits[0, 0, judge._no] = 2.0, -1.0
    asked: list[dict[str, object]] = []

    def model(ids: object, **kw: object) -> object:
        asked.append(kw)
        return type("Out", (), {"logits": logits})()

    judge._model = model
    assert judge.score_text(q, code) == pytest.approx(3.0, abs=1e-4)
    assert asked == [{"logits_to_keep": 1}]  # the last position's logits only, not a (tokens x vocabulary) matrix
    # a model class that does not take the argument is still read, with every position's logits
    judge._model = lambda ids: type("Out", (), {"logits": logits})()
    assert judge.score_text(q, code) == pytest.approx(3.0, abs=1e-4)


def test_a_judge_folder_that_holds_no_model_is_a_clear_error_when_first_used(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # looks like a model folder, holds none
    judge = open_answerability_judge(_settings(tmp_path, str(folder)))
    assert judge is not None
    with pytest.raises(ModelNotAvailable, match=r"(?s)answerability judge broken at .* could not be loaded .*set answer.answerability_judge"):
        judge.score_text("q", "text")


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


@pytest.mark.parametrize("native", [False, True])
def test_the_judge_computes_in_bf16_only_where_the_cpu_does(tmp_path: Path, tiny_llama: Path, native: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Without AVX512-BF16 or AMX torch emulates bf16, 6-7x slower than fp32 (bench/bench_judge_dtype.py).
    import torch

    monkeypatch.setattr("lorebase.index.embeddings.cpu_supports_bf16", lambda: native)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    judge = open_answerability_judge(_settings(tmp_path, str(tiny_llama)))
    assert judge is not None
    judge.score_text("How is a failed job retried?", "[jobs/retry.py]\ndef retry_delay(attempt): ...")
    assert next(judge._model.parameters()).dtype == (torch.bfloat16 if native else torch.float32)
