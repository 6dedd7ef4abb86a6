"""The names of every metric an evaluation run reports, in report order, with a line on each.

Scores are 0..1 with higher better, except the speed figures (seconds and tokens per second).
"""

from __future__ import annotations

JUDGE = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
NO_LLM = (
    "non_llm_context_precision_with_reference",
    "non_llm_context_recall",
    "id_based_context_precision",
    "id_based_context_recall",
    "non_llm_string_similarity",
    "rouge_score",
    "bleu_score",
)
SUMMARY = ("summary_rouge1", "summary_rougeL")
SPEED = ("latency_p50_s", "latency_p95_s", "tokens_per_s")
LOWER_IS_BETTER = frozenset({"latency_p50_s", "latency_p95_s"})
TREND = ("faithfulness", "answer_relevancy", "hit@5", "mrr", "rouge_score")

_ABOUT = {
    "faithfulness": "share of the answer's statements the retrieved sources support (judge)",
    "answer_relevancy": "how well questions the judge infers from the answer match the question (judge + embedder)",
    "context_precision": "are the useful sources ranked first, judged against the reference answer (judge)",
    "context_recall": "share of the reference answer's claims found in the sources (judge)",
    "non_llm_context_precision_with_reference": "ranked share of sources that string-match a gold chunk",
    "non_llm_context_recall": "share of gold chunks that string-match a retrieved source",
    "id_based_context_precision": "share of the answer's sources that are gold sources",
    "id_based_context_recall": "share of gold sources among the answer's sources",
    "non_llm_string_similarity": "1 - normalised Levenshtein distance of answer and reference",
    "rouge_score": "ROUGE-L F1 of answer against reference",
    "bleu_score": "BLEU of answer against reference",
    "hit@1": "the first retrieved chunk is gold",
    "hit@5": "a gold chunk is in the top 5",
    "mrr": "1 / rank of the first gold chunk",
    "summary_rouge1": "ROUGE-1 F1 of lecture summaries against the reference summaries",
    "summary_rougeL": "ROUGE-L F1 of lecture summaries against the reference summaries",
    "latency_p50_s": "median seconds per answer, retrieval included",
    "latency_p95_s": "95th percentile seconds per answer",
    "tokens_per_s": "answer tokens per second of answering",
}


def retrieval_names(k: int) -> tuple[str, ...]:
    return ("hit@1", "hit@5", f"recall@{k}", "mrr")


def quality_names(k: int) -> tuple[str, ...]:
    """Every 0..1 metric scored per question."""
    return JUDGE + NO_LLM + retrieval_names(k)


def all_names(k: int) -> tuple[str, ...]:
    return quality_names(k) + SUMMARY + SPEED


def about(name: str) -> str:
    if name.startswith("recall@"):
        return f"share of gold items with a chunk in the top {name.removeprefix('recall@')}"
    return _ABOUT.get(name, "")
