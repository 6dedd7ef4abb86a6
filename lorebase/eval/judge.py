"""The judge that scores answers for the RAGAS LLM metrics, and how its failures are told apart.

Any OpenAI-compatible endpoint can judge (``--judge URL``): ragas calls it through instructor, with
the output schema in ``response_format`` (``eval.judge_mode = json_schema``, which vLLM turns into
constrained decoding) or JSON mode with the schema only in the prompt (``json``). Without a judge
URL our own generator judges: over its HTTP endpoint when it has one (vLLM, openai backends), else
through :class:`GeneratorJudge`, a small adapter that calls the in-process backend.

Imports ragas, instructor and openai: import this module only when an evaluation runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import instructor
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError
from ragas.llms.base import InstructorBaseRagasLLM, InstructorLLM, InstructorModelArgs

from lorebase.errors import InvalidInput, LorebaseError
from lorebase.generation.backend import GenerationRequest, Generator
from lorebase.offline_models import larger_prepared_profile
from lorebase.settings import Settings

if TYPE_CHECKING:
    from lorebase.generation.vllm_options import VLLMOptions

FAILURE_KINDS = ("invalid_output", "timeout", "error")

# Each failed call is counted and shown in the report; instructor's own error log per call is noise.
logging.getLogger("instructor").setLevel(logging.CRITICAL)


class JudgeOutputError(LorebaseError):
    """The judge answered, but not with JSON of the asked shape."""

    code = "judge_output"


@dataclass
class Judge:
    llm: InstructorBaseRagasLLM
    name: str  # what the report shows: which model, where, how
    url: str | None
    model: str
    mode: str
    _client: AsyncOpenAI | None = field(default=None, repr=False)
    _server: Any = field(default=None, repr=False)  # a vLLM server started for the judge alone

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "model": self.model, "mode": self.mode}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._server is not None:
            await self._server.stop()
            self._server = None


async def open_judge(settings: Settings, generator: Generator | None, *, url: str | None = None,
                     model: str | None = None) -> Judge:
    """The judge named by ``url``/``model`` (else ``eval.judge_url``/``judge_model``, else the generator)."""
    ev = settings.eval
    url = url or ev.judge_url
    model = model or ev.judge_model
    if url:
        key = ev.judge_api_key.get_secret_value() if ev.judge_api_key else None
        return await _endpoint_judge(settings, url, model, key)
    larger = larger_prepared_profile(settings)
    if larger is not None and settings.generation.backend == "vllm":
        return await _profile_judge(settings, *larger, model)
    if generator is None:
        raise InvalidInput("no judge: give --judge URL (an OpenAI-compatible server) or start the generator")
    served_url = getattr(generator, "base_url", None)
    if isinstance(served_url, str) and served_url:
        g = settings.generation
        key = g.api_key.get_secret_value() if g.api_key else None
        return await _endpoint_judge(settings, served_url, model or generator.base_model, key)
    llm = GeneratorJudge(generator, max_tokens=ev.judge_max_tokens, structured=ev.judge_mode == "json_schema")
    return Judge(llm, f"{generator.base_model} (in-process generator)", None, generator.base_model, ev.judge_mode)


def judge_engine(settings: Settings, folder: Path) -> VLLMOptions:
    """The judge's own vLLM engine: the generator's engine settings on the next port, with its own
    log, no LoRA slots (the judge never takes an adapter, and LoRA work costs every token), and JSON
    that may carry whitespace: held to compact JSON, the 1.5B judge answered ragas' verdict and
    classification prompts with empty lists, so faithfulness and context recall gave no score
    (docs/benchmarks.md, "Evaluation judge")."""
    from lorebase.generation.backend import model_context_length
    from lorebase.generation.vllm_options import VLLMOptions

    return VLLMOptions.of(settings, model_dir=folder, served_name=folder.name,
                          max_model_len=min(model_context_length(folder), 8192),
                          port=settings.generation.vllm_port + 1, log_file=settings.logs_dir / "vllm-judge.log",
                          enable_lora=False, json_whitespace=True)


async def _profile_judge(settings: Settings, name: str, folder: Path, model: str | None) -> Judge:
    from lorebase.generation.vllm_server import VLLMServer

    server = VLLMServer(judge_engine(settings, folder))
    await server.start()
    try:
        judge = await _endpoint_judge(settings, server.url + "/v1", model or folder.name, None)
    except BaseException:
        await server.stop()
        raise
    judge.name = f"{folder.name} (profile {name}, started for judging) ({settings.eval.judge_mode})"
    judge._server = server
    return judge


async def _endpoint_judge(settings: Settings, url: str, model: str | None, api_key: str | None) -> Judge:
    ev = settings.eval
    # Retries would hide failures we want counted, and multiply the time a broken judge costs.
    client = AsyncOpenAI(base_url=url.rstrip("/"), api_key=api_key or "EMPTY", timeout=ev.judge_timeout_s, max_retries=0)
    if not model:
        try:
            served = [m.id async for m in client.models.list()]
        except Exception as e:
            await client.close()
            raise InvalidInput(f"the judge at {url} did not list its models ({type(e).__name__}); give --judge-model") from e
        if not served:
            await client.close()
            raise InvalidInput(f"the judge at {url} serves no model; give --judge-model")
        model = served[0]
    mode = instructor.Mode.JSON_SCHEMA if ev.judge_mode == "json_schema" else instructor.Mode.JSON
    extra: dict[str, Any] = {"extra_body": dict(ev.judge_extra_body)} if ev.judge_extra_body else {}
    llm = InstructorLLM(
        client=instructor.from_openai(client, mode=mode),
        model=model,
        provider="openai",
        model_args=InstructorModelArgs(temperature=0.0, top_p=1.0, max_tokens=ev.judge_max_tokens),
        max_retries=0,  # instructor's re-asking: one attempt, its failure is counted
        **extra,
    )
    return Judge(llm, f"{model} @ {url} ({ev.judge_mode})", url, model, ev.judge_mode, client)


class GeneratorJudge(InstructorBaseRagasLLM):
    """ragas' LLM interface over a lorebase :class:`Generator`, for a generator with no HTTP endpoint.

    The ragas prompt already states the JSON schema; the schema also goes in ``json_schema`` so a
    backend with structured decoding keeps to it. A backend without (transformers) refuses that with
    InvalidInput once; from then on the schema is only in the prompt and the answer is parsed.
    """

    def __init__(self, generator: Generator, *, max_tokens: int, structured: bool = True) -> None:
        self.generator = generator
        self.max_tokens = max_tokens
        self.structured = structured

    async def agenerate(self, prompt: str, response_model: type[Any]) -> Any:
        messages = [{"role": "user", "content": prompt}]
        schema = response_model.model_json_schema() if issubclass(response_model, BaseModel) else None
        out = None
        if self.structured and schema is not None:
            try:
                out = await self.generator.complete(
                    GenerationRequest(messages=messages, max_tokens=self.max_tokens, temperature=0.0, json_schema=schema)
                )
            except InvalidInput:
                self.structured = False
        if out is None:
            out = await self.generator.complete(GenerationRequest(messages=messages, max_tokens=self.max_tokens, temperature=0.0))
        if out.finish_reason == "length":
            raise JudgeOutputError(f"the judge's answer was cut at {self.max_tokens} tokens before the JSON closed")
        return response_model.model_validate_json(json_text(out.text))

    def generate(self, prompt: str, response_model: type[Any]) -> Any:
        return asyncio.run(self.agenerate(prompt, response_model))


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def json_text(text: str) -> str:
    """The JSON object in a model's answer: inside a code fence if there is one, else from the first
    ``{`` to the last ``}``."""
    m = _FENCE.search(text)
    body = m.group(1) if m else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise JudgeOutputError(f"no JSON object in the judge's answer: {text[:120]!r}")
    return body[start : end + 1]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of a failed judge call; kind is one of FAILURE_KINDS."""
    chain = _chain(exc)
    names = [type(e).__name__ for e in chain]
    message = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
    if any(isinstance(e, TimeoutError | asyncio.TimeoutError) or "Timeout" in n for e, n in zip(chain, names, strict=True)):
        return "timeout", message
    if any(isinstance(e, ValidationError | json.JSONDecodeError | JudgeOutputError) for e in chain) or any(
        n in ("IncompleteOutputException", "ValidationError") for n in names
    ):
        return "invalid_output", message
    # instructor's retry error without a transport error behind it: an answer came back but did not parse
    if names[0] == "InstructorRetryException" and len(chain) == 1 and getattr(exc, "last_completion", None) is not None:
        return "invalid_output", message
    return "error", message
