"""Writing the answer: when to abstain and what counts as support, and the generator backend."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from lorebase.settings.section import Section


class AnswerSettings(Section):
    min_relevance: float = Field(
        0.2, ge=0.0, le=1.0,
        description="Below this score (word overlap and embedder cosine of the best evidence line, blended) retrieval "
        "counts as finding nothing relevant and the answer abstains; long questions in other words than the code's "
        "score low, so it stays low and the subject-word check does the abstaining.",
    )
    abstain_when_unmentioned: bool = Field(
        True,
        description="Abstain, naming them, when words naming the question's subject occur in no chunk of the searched "
        "scope (\"Brotli\" in a question about a library that never mentions it), however close the retrieved chunks "
        "score; words that frame a question (design, summarise, what did the team think) are not counted, nor derived "
        "words that sum up in the asker's words (\"prioritization\", \"conceptual\"); a word split in two "
        "(\"art board\" for \"artboard\") or mistyped (\"backgroud\") counts as the sources' word; in a question of 20 "
        "words or more only names count (\"GPU\", \"docx\"), not plain English words (\"the tension between\").",
    )
    min_evidence_score: float = Field(
        0.2, ge=0.0, le=1.0,
        description="When nothing the model wrote can be verified, evidence lines scoring at least this are quoted "
        "(an extractive answer); below it the answer abstains.",
    )
    override_abstention_score: float = Field(
        0.25, ge=0.0, le=1.0,
        description="When the model says the sources do not hold the answer, it abstains unless an evidence line scores "
        "at least this (then the line is quoted): small models say so about sources that hold the answer, and whether "
        "the sources mention the question's subject at all is checked before (`abstain_when_unmentioned`).",
    )
    quotes: int = Field(
        3, ge=1, le=10,
        description="An extractive answer quotes at most this many sources, in retrieval order. SWE-QA's reference "
        "answers name 2.2 files on average; with 3 rather than 2, an extractive answer cites a gold file for 0.92 of "
        "the dev code questions instead of 0.85 (docs/benchmarks.md), and a smaller share of its quotes are gold.",
    )
    quote_share: float = Field(
        0.6, gt=0.0, le=1.0,
        description="A source is quoted in an extractive answer when its best evidence line scores at least this "
        "share of the best source's: the clear best and its close runners-up, not every source retrieved.",
    )
    quote_top_source: bool = Field(
        True,
        description="When no sentence of a generated answer cites the top-ranked source, its best evidence line is "
        "quoted after the answer with its citation (if it scores at least `min_evidence_score`): the model often "
        "writes about a lower-ranked source, and the passage retrieval ranks first is the likeliest to hold the answer.",
    )
    evidence_tokens_per_source: int = Field(
        80, ge=16, le=2000,
        description="About how many tokens of each retrieved chunk's best lines the prompt carries.",
    )
    evidence_vector_cache: int = Field(
        50_000, ge=0,
        description="Vectors of evidence lines kept between questions (about 1.5 KB each), so a source retrieved again is "
        "not embedded again; 0: no cache.",
    )
    support_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="Share of a sentence's content words its cited source must contain to support it."
    )
    answerability_judge: str = Field(
        "off",
        description="Before a question about a repository is answered, a larger generator reads the top 3 retrieved "
        "chunks and says whether they answer it; below `answerability_threshold` the answer abstains. `off`; a profile "
        "name (`base`) or a Hugging Face model folder; `auto`: the base profile when it is prepared and "
        "`models.generator` is a smaller profile. On the SWE-QA dev set it lifts code abstention from 0.47 to 0.77 "
        "but turns away 4 more answerable questions of 142, and costs 3 GB and one forward pass a question, one at a "
        "time (about 1.4 s on 2 cores; median time to first token 12 s -> 36 s with 8 questions at once). Transcript "
        "questions are not judged.",
    )
    answerability_threshold: float = Field(
        0.1915,
        description="Log-odds of \"yes\" against \"no\" from the answerability judge below which the answer abstains. "
        "The default was chosen for the 1.5B base profile on repositories other than the evaluation's "
        "(bench/bench_answerability_judge.py: at most 8% of answerable questions turned away there).",
    )


class GenerationSettings(Section):
    backend: Literal["vllm", "transformers", "openai"] = Field("vllm", description="Which generator backend serves answers.")
    base_url: str | None = Field(None, description="URL of a running OpenAI-compatible server; for `vllm`, skips starting one.")
    api_key: SecretStr | None = Field(None, description="Key for the remote OpenAI-compatible server, if it needs one.")
    max_new_tokens: int = Field(384, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    repetition_penalty: float = Field(
        1.15, ge=1.0, le=2.0, description="Answers and summaries: above 1 discourages loops (small models repeat themselves)."
    )
    max_concurrency: int = Field(8, ge=1, description="Requests generating at once.")
    max_queue: int = Field(64, ge=0, description="Requests waiting beyond max_concurrency before new ones get 429 (too many requests).")
    summary_sentences_per_part: int = Field(
        2, ge=0, le=100,
        description="A transcript too long to summarise in one call is read by this many sentences of each passage, "
        "those whose words the whole transcript keeps coming back to (0: every sentence).",
    )
    summary_call_tokens: int = Field(
        1536, ge=256,
        description="The most prompt tokens one summary call reads (less when the model's context is smaller); a longer "
        "source is summarised in parts. Small models summarise a page well and a one-hour meeting read at once badly: "
        "they write about its first minutes.",
    )
    summary_merge: Literal["select", "model"] = Field(
        "select",
        description="How a summary too long for one call joins its parts' checked bullets: `select` chooses those about what "
        "the source keeps coming back to, up to `summary_words` (no model call), and a transcript's own salient sentences fill "
        "what is left of that budget, in one-call summaries too; `model` asks the model to merge them.",
    )
    summary_words: int = Field(
        120, ge=20, le=2000,
        description="About how long a selected summary is, in words (QMSum's reference summaries of whole meetings: median "
        "110 words in its train split).",
    )
    summary_opening: int = Field(
        2, ge=0, le=20,
        description="A long transcript's selected summary opens with this many of the first sentences it reads that say "
        "something (the salient sentences of its first passages; a meeting opens with what it is about, as QMSum's "
        "reference summaries do); 0: none.",
    )
    summary_concurrency: int = Field(
        0, ge=0, description="Summary calls (map batches, merges) sent at once, for the server to batch; 0: max_concurrency, 1: one at a time."
    )
    vllm_python: Path = Field(Path(".venv-vllm/bin/python"), description="Python of the model-server environment.")
    vllm_port: int = Field(8001, ge=1, le=65535)
    vllm_dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "auto",
        description="vLLM's precision for every engine it runs (base and merged); auto: bfloat16 on a CPU with AVX512-BF16 or AMX "
        "(~1.5x faster, answer quality measured level with float32), float32 on other CPUs, the checkpoint's own on a GPU.",
    )
    vllm_lora: bool = Field(
        True,
        description="vLLM: give the base engine LoRA slots, so adapters load at run time. Off: none, and each token skips "
        "the LoRA work, for serving the base model alone (benchmarks, a base-only deployment); an adapter to serve "
        "(generation.adapters, a promoted one) is then an error at start.",
    )
    vllm_kv_cache_gib: float = Field(2.0, gt=0, description="vLLM: KV cache per engine, in GiB (a merged engine has its own).")
    vllm_eager: bool = Field(
        True,
        description="vLLM: run without torch.compile. An engine starts in seconds instead of minutes on a small CPU; engines with LoRA run eager anyway.",
    )
    transformers_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="transformers backend: bfloat16 decodes about 1.5x faster on CPUs with AVX512-BF16 or AMX, with different greedy text."
    )
    model_name: str | None = Field(
        None, description="Name the base model is served under (for `openai`, the remote model id); defaults to the generator folder's name."
    )
    max_model_len: int | None = Field(None, ge=16, description="Context length in tokens; defaults to the model's own max_position_embeddings.")
    adapters: dict[str, Path] = Field(default_factory=dict, description="LoRA adapters (name: folder) loaded when the generator starts.")
    promoted_serving: Literal["auto", "merged", "lora"] = Field(
        "auto",
        description="vLLM: serve the promoted adapter from an engine on merged weights (base-model speed; a second engine) or through LoRA; auto: merged on the CPU build, LoRA on a GPU.",
    )
    max_loras: int = Field(4, ge=1, description="vLLM: adapters usable in one batch.")
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256] = Field(16, description="vLLM: the largest LoRA rank it can load.")
    vllm_startup_timeout_s: float = Field(300.0, gt=0, description="How long a starting vLLM server may take to answer /health.")
    vllm_compact_json: bool = Field(True, description="vLLM: structured output without free whitespace (small models otherwise loop on blanks).")
    request_timeout_s: float = Field(600.0, gt=0, description="Longest wait for one generation request to the model server.")
