"""Measuring and improving: evaluation, QA pairs, LoRA fine-tuning and embedder tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator

from lorebase.settings.section import Section

QAKind = Literal["transcript", "code", "doc", "commit", "issue", "pull_request"]


class EvalSettings(Section):
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


class QASettings(Section):
    """`lorebase qa`: question-answer pairs made from the store, for fine-tuning and its evaluation."""

    kinds: list[QAKind] = Field(
        default_factory=lambda: list(get_args(QAKind)),
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


class FinetuneSettings(Section):
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
    max_abstention_share: float = Field(
        0.2, ge=0.0, lt=1.0,
        description="At most this share of the training examples teach abstention (gold withheld, or an unanswerable pair); "
        "the extra ones are left out. Answerable pairs whose target fails the check are skipped, so without a cap abstention can "
        "become half the data and the adapter abstains on answerable questions.",
    )
    max_answer_tokens: int = Field(96, ge=8, le=4096, description="Target answers are cut to this many tokens; prompts get the rest of max_length.")
    max_examples: int = Field(1000, ge=1, description="Training examples per run at most (drawn from the train split).")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the training examples.")
    batch_size: int = Field(4, ge=1, description="Examples per device step (4 keeps a CPU run of evidence prompts within a few GB; the logits alone are batch x length x vocabulary floats).")
    grad_accum: int = Field(4, ge=1, description="Steps accumulated per optimizer update (16 examples per update with the default batch).")
    learning_rate: float = Field(3e-4, gt=0.0)
    preference_beta: float = Field(
        0.1, gt=0.0, description="Preference tuning (DPO): how far the tuned model may move from its base; higher stays closer."
    )
    preference_learning_rate: float = Field(5e-5, gt=0.0, description="Learning rate of preference tuning (DPO).")
    preference_sft_weight: float = Field(
        0.0, ge=0.0, description="Preference tuning: weight of a likelihood term on the chosen answer beside the DPO loss (0: DPO alone)."
    )
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


class EmbedderTuningSettings(Section):
    min_pairs: int = Field(50, ge=1, description="Tuning refuses to start with fewer train-split QA pairs than this.")
    max_pairs: int = Field(5000, ge=1, description="Train-split pairs used per run at most (a seeded sample).")
    hard_negatives: bool = Field(True, description="Give each pair the chunk of another source that BM25 ranks highest as a hard negative.")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the training pairs.")
    batch_size: int = Field(32, ge=2, description="Pairs per step; the other chunks in a batch are its in-batch negatives.")
    mini_batch_size: int = Field(
        0, ge=0,
        description="0: a step embeds its whole batch at once (fastest; memory grows with batch_size x max_seq_length, the job peaked at 9.2 GB at 32 x 256 on CPU). n: in slices of n pairs (GradCache: the same loss, negatives and gradients, the memory of n pairs, one more forward pass per step).",
    )
    learning_rate: float = Field(2e-5, gt=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    max_seq_length: int = Field(256, ge=16, le=8192, description="Tokens per text during tuning at most.")
    gate_max_pairs: int = Field(500, ge=1, description="Held-out (test-split) pairs the gate scores both embedders on at most.")
    gate_pool: int = Field(3000, ge=10, description="Chunks each held-out question's chunk is ranked among (the held-out ones plus a seeded sample).")
    gate_min_gain: float = Field(0.005, ge=0.0, description="How much the candidate's MRR@10 must rise (more than this) to be promoted.")
    seed: int = Field(0)
