"""Finding the evidence: the dense index and its upkeep, and hybrid retrieval."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lorebase.settings.section import Section


class IndexSettings(Section):
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
    embed_long_texts: Literal["truncate", "pool"] = Field(
        "truncate",
        description="A chunk longer than the embedder reads (256 tokens for MiniLM): truncate (its vector sees its start) or pool "
        "(pieces the embedder reads whole, each under the chunk's path or title, averaged). The index records it: after a change "
        "the saved index is refused until `lorebase index rebuild` re-embeds every chunk the new way.",
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
    bm25_k1: float = Field(
        1.5, ge=0.0, le=5.0,
        description="BM25's term-frequency saturation for chunks: lower lets a word said once count nearly as much as one said often.",
    )
    bm25_b: float = Field(
        0.75, ge=0.0, le=1.0,
        description="BM25's length normalisation for chunks other than transcripts (0: none, 1: full): how much a long chunk is marked down for its length.",
    )
    bm25_transcript_b: float = Field(
        0.75, ge=0.0, le=1.0,
        description="BM25's length normalisation for transcript chunks, whose windows come at three lengths (45-90 s and joined). "
        "0.4 ranks meetings better (QMSum hit@5 +0.03) but returns longer windows and did not make answers better "
        "(docs/benchmarks.md), so it is not the default.",
    )
    bm25_abbreviation_weight: float = Field(
        0.0, ge=0.0, le=1.0,
        description="BM25 for code and docs: the question's words as code abbreviates them (\"attributes\" as attr, \"parenthesized\" "
        "as Paren, \"configuration\" as cfg) also count, with this weight; 0: off.",
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


class RetrievalSettings(Section):
    top_k: int = Field(5, ge=1, le=100)
    candidates: int = Field(40, ge=1, le=1000, description="Candidates taken from each retriever before fusion.")
    chunks_per_file: int = Field(
        2, ge=0, le=100,
        description="At most this many chunks of one code or doc file in a ranking (search results and an answer's "
        "sources), so the top k reach more files; 0: no limit. Transcripts, commits and issues are never limited. "
        "2 lifts answers citing a gold file on new repositories (0.600 -> 0.663); 1 reaches more files but quotes "
        "a second, wrong file more often (docs/benchmarks.md).",
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="Hybrid fusion: convex (both retrievers score every candidate, min-max normalised, weighted sum) or rrf (reciprocal rank).",
    )
    dense_weight: float = Field(0.4, ge=0.0, le=1.0, description="Hybrid: the dense retriever's share of the fused score; BM25 gets the rest.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (fusion = rrf).")
    file_weight: float = Field(
        0.15, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the file-level BM25 score (a code or doc file as one document) added to each of its chunks.",
    )
    file_dense_weight: float = Field(
        0.2, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the file-level dense score (the best embedder match among a file's chunks) added to each of its chunks.",
    )
    kind_bias: dict[str, float] = Field(
        default_factory=lambda: {"commit": -0.5, "doc": -0.3},
        description="Hybrid (convex): added to the fused score of chunks of each source kind (code questions are mostly answered by code).",
    )
    symbol_weight: float = Field(
        0.1, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the symbol-level BM25 score (a definition's path, qualified name and signature; other code's path and module name; a doc section's headings) added to each chunk.",
    )
    path_weight: float = Field(
        0.0, ge=0.0, le=2.0,
        description="Hybrid (convex): weight of the path-level BM25 score (a code or doc file's path alone) added to each of its chunks.",
    )
    definition_weight: float = Field(
        1.0, ge=0.0, le=2.0,
        description="Hybrid (convex): added to a code chunk that defines a name the question writes as code (backticked, called, dotted, snake_case or CamelCase), divided by the number of files defining that name; such chunks join the candidates.",
    )
    test_bias: float = Field(
        -0.3, ge=-2.0, le=0.0,
        description="Hybrid (convex): added to the fused score of the chunks of test files (under test/, tests/, testing/ or __tests__/; test_*, *_test.py, conftest.py, *_test.go, *.test.ts, *.spec.js, *_spec.rb) when the question does not ask about tests (test, fixture, conftest, unittest, mock, spec); 0: off.",
    )
    speaker_weight: float = Field(
        0.2, ge=0.0, le=2.0,
        description="Hybrid (convex): for a question that names a speaker of a transcript, weight of the share of a window's words that speaker says, added to it.",
    )

    @field_validator("kind_bias")
    @classmethod
    def _known_kinds(cls, v: dict[str, float]) -> dict[str, float]:
        from lorebase.store.models import SOURCE_KINDS

        bad = sorted(set(v) - set(SOURCE_KINDS))
        if bad:
            raise ValueError(f"unknown source kind {bad[0]!r}; kinds: {', '.join(SOURCE_KINDS)}")
        return v
