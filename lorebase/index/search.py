"""The search service: dense, BM25 or hybrid retrieval over the store, as citations S1..Sk.

Pipeline: filters -> allowed chunk ids (from the store); each retriever takes its top
``retrieval.candidates`` within them; fusion (hybrid: convex combination of both retrievers'
normalised scores over the candidates, or reciprocal rank fusion; see ``fusion``); rows loaded from the
store (ids deleted since the last sync drop out here); optional cross-encoder rerank; chunks
overlapping a better one of the same source dropped; top k; optional neighbour context.
If dropping leaves fewer than k (or k is beyond the pool), the pool is widened and the query run
again; the wider ranking only extends the first, so the top k never depends on k.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, or_, select

from lorebase.citations import Citation, cite
from lorebase.errors import InvalidInput
from lorebase.index.bm25 import Bm25Index
from lorebase.index.filters import allowed_chunk_ids, parse_filters
from lorebase.index.fusion import convex_fusion, reciprocal_rank_fusion
from lorebase.index.test_files import asks_about_tests
from lorebase.store.models import Chunk, Source, SourceKind

if TYPE_CHECKING:
    from lorebase.index.coverage import SubjectWords
    from lorebase.index.dense import DenseIndex
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.index.rerank import CrossEncoderReranker
    from lorebase.settings import RetrievalSettings, Settings
    from lorebase.store import Store

log = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "bm25")
MAX_K = 100
# A name defined in at most this many files brings its definitions into the candidates even when
# neither retriever found them; a commoner one (``__init__``, ``run``) only lifts those found.
DEFINITIONS_JOINING = 3
FILE_KINDS = frozenset({SourceKind.code.value, SourceKind.doc.value})  # sources that are files of a repository or folder


@dataclass
class Hit:
    """One retrieved chunk with its source (both detached from any session) and its score."""

    chunk: Chunk
    source: Source
    score: float

    @property
    def chunk_id(self) -> int:
        return self.chunk.id


def _overlaps(a: Chunk, b: Chunk) -> bool:
    if a.source_id != b.source_id:
        return False
    if a.start_line is not None and b.start_line is not None:
        return a.start_line <= (b.end_line or b.start_line) and b.start_line <= (a.end_line or a.start_line)
    if a.start_time is not None and b.start_time is not None:
        a_end = a.end_time if a.end_time is not None else a.start_time
        b_end = b.end_time if b.end_time is not None else b.start_time
        # Touching windows (one ends where the next starts) are neighbours, not overlaps.
        return a.start_time < b_end and b.start_time < a_end
    return False


def drop_overlaps(hits: list[Hit]) -> list[Hit]:
    """Keep each hit unless a better-ranked hit of the same source covers overlapping lines or time."""
    kept: list[Hit] = []
    for h in hits:
        if not any(_overlaps(h.chunk, k.chunk) for k in kept):
            kept.append(h)
    return kept


def cap_per_file(hits: list[Hit], cap: int) -> list[Hit]:
    """At most ``cap`` hits of each code or doc file, best first (0: no cap). Three chunks of one
    file fill a short list with one file's neighbours and push out the next files, one of which
    may hold the answer; a transcript, commit or issue thread keeps all its hits, since one meeting
    is one source and its windows are the ranking."""
    if cap <= 0:
        return hits
    taken: dict[str, int] = {}
    kept: list[Hit] = []
    for h in hits:
        if h.source.kind in FILE_KINDS:
            if taken.get(h.source.id, 0) >= cap:
                continue
            taken[h.source.id] = taken.get(h.source.id, 0) + 1
        kept.append(h)
    return kept


def extended_ranking(head: list[tuple[int, float]], wider: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """``head`` then the ids of ``wider`` (a ranking of a larger pool) it lacks, in their order. A
    score from the wider pool is on another scale, so an appended one is capped at the score above
    it: the list stays best first."""
    if not head:
        return list(wider)
    out = list(head)
    seen = {i for i, _ in head}
    floor = head[-1][1]
    for i, score in wider:
        if i not in seen:
            floor = min(floor, score)
            out.append((i, floor))
    return out


class SearchService:
    """Retrieval over the store. Built once per process; ``search`` is safe to call from threads."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        embedder: LorebaseEmbedding | None = None,
        dense: DenseIndex | None = None,
        bm25: Bm25Index | None = None,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._dense = dense
        self._init_lock = threading.Lock()
        ix = settings.index
        self.bm25 = bm25 or Bm25Index(store, ix.bm25_stemmer, ix.bm25_k1, ix.bm25_b, ix.bm25_transcript_b,
                                       ix.bm25_abbreviation_weight)
        self.reranker = reranker
        self._subject_words: SubjectWords | None = None
        if reranker is None and settings.index.reranker:
            from lorebase.index.rerank import CrossEncoderReranker

            self.reranker = CrossEncoderReranker(settings.index.reranker)

    # --- parts, made on first use so a BM25-only search never loads the embedder ---------------

    @property
    def embedder(self) -> LorebaseEmbedding:
        with self._init_lock:
            if self._embedder is None:
                from lorebase.index.embeddings import LorebaseEmbedding

                self._embedder = LorebaseEmbedding.from_settings(self.settings)
            return self._embedder

    @property
    def dense(self) -> DenseIndex:
        if self._dense is None:
            embedder = self.embedder
            with self._init_lock:
                if self._dense is None:
                    from lorebase.index.sync import IndexSyncer

                    syncer = IndexSyncer(self.settings, self.store, embedder, progress=False)
                    syncer.open()
                    self._dense = syncer.dense
        return self._dense

    def warm(self) -> None:
        """Load the embedder, open (and if need be repair) the dense index, build BM25: call at start-up
        so the first request does not pay for it."""
        _ = self.dense
        self.embedder.embed_query("warm up")
        self.bm25.refresh()

    # --- the two retrievers ----------------------------------------------------------------------

    def dense_candidates(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        self.dense.reload_if_changed()
        return self._dense_search(self.embedder.embed_query(query), n, allowed)

    def bm25_candidates(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        return self.bm25.search(query, n, allowed)

    def _dense_search(self, vec: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        return self.dense.search(vec, n, allowed)

    # --- public ----------------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
        neighbors: int = 0,
    ) -> list[Hit]:
        """The top ``k`` chunks for ``query``, best first."""
        return self.retrieve_checked(query, k, filters, mode, neighbors, check=False)[0]

    def retrieve_checked(
        self,
        query: str,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
        neighbors: int = 0,
        *,
        check: bool = True,
    ) -> tuple[list[Hit], list[str]]:
        """``retrieve``, and with ``check`` the words naming the question's subject that no chunk in
        the scope mentions (``unmentioned``; empty when nothing was found), the scope resolved once."""
        query = (query or "").strip()
        if not query:
            raise InvalidInput("the query is empty")
        k = self.settings.retrieval.top_k if k is None else k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
        if mode not in MODES:
            raise InvalidInput(f"unknown search mode {mode!r}; modes: {', '.join(MODES)}")
        if not isinstance(neighbors, int) or not 0 <= neighbors <= 5:
            raise InvalidInput(f"neighbors must be an integer from 0 to 5, got {neighbors!r}")
        allowed = allowed_chunk_ids(self.store, parse_filters(filters))
        if allowed is not None and allowed.size == 0:
            return [], []

        # The first ``candidates`` of each retriever always make the head of the ranking, whatever
        # ``k``: fusion normalises over its pool, so ranking a wider pool reorders the top, and the
        # top 5 must be the first 5 of the top 50. A wider pool only extends the list.
        n = self.settings.retrieval.candidates
        ranked: list[tuple[int, float]] = []
        vectors: dict[int, np.ndarray] = {}  # the query's vector per embedder generation: a wider pool reuses it
        while True:
            wider, exhausted = self._ranked(query, n, allowed, mode, vectors)
            ranked = extended_ranking(ranked, wider)
            hits = self._load(ranked)
            if self.reranker is not None and hits:
                hits = self._rerank(query, hits)
            hits = cap_per_file(drop_overlaps(hits), self.settings.retrieval.chunks_per_file)
            if len(hits) >= k or exhausted:
                break
            n *= 4  # k beyond the pool, deleted-but-unsynced ids or overlaps ate into it: widen it
        hits = hits[:k]
        if neighbors:
            hits = self._with_neighbors(hits, neighbors)
        return hits, self._unmentioned(query, allowed) if check and hits else []

    def unmentioned(self, question: str, filters: dict[str, Any] | None = None) -> list[str]:
        """Words naming the question's subject that no chunk within ``filters`` mentions (see
        lorebase/index/coverage.py): the sources cannot answer about what they never mention."""
        return self._unmentioned(question, allowed_chunk_ids(self.store, parse_filters(filters)))

    def _unmentioned(self, question: str, allowed: np.ndarray | None) -> list[str]:
        from lorebase.index.coverage import SubjectWords, unmentioned
        from lorebase.index.english import english_words

        with self._init_lock:
            if self._subject_words is None:
                self._subject_words = SubjectWords(self.bm25.stemmer, english_words())
        return unmentioned(question, self._subject_words, self.bm25, allowed)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
        neighbors: int = 0,
    ) -> list[Citation]:
        """Citations S1..Sk for the top ``k`` chunks."""
        hits = self.retrieve(query, k, filters, mode, neighbors)
        return [cite(h.source, h.chunk, f"S{i}", score=round(h.score, 6)) for i, h in enumerate(hits, start=1)]

    # --- steps -----------------------------------------------------------------------------------

    def _ranked(self, query: str, n: int, allowed: np.ndarray | None, mode: str,
                vectors: dict[int, np.ndarray] | None = None) -> tuple[list[tuple[int, float]], bool]:
        """Candidates best first, and whether asking for more could not give more. ``vectors`` keeps
        the query's vector by embedder generation across calls for one question."""
        if mode == "bm25":
            bm25 = self.bm25_candidates(query, n, allowed)
            return bm25, len(bm25) < n
        dense = self.dense
        dense.reload_if_changed()  # before embedding: a swap to another embedder happens here
        for _ in range(3):
            generation = dense.generation
            if vectors is None or generation not in vectors:
                vec = self.embedder.embed_query(query)
                if vectors is not None:
                    vectors[generation] = vec
            else:
                vec = vectors[generation]
            ranked = self._ranked_with_vector(query, vec, n, allowed, mode)
            if dense.generation == generation:  # no swap between embedding the query and searching
                return ranked
        return ranked

    def _ranked_with_vector(
        self, query: str, vec: np.ndarray, n: int, allowed: np.ndarray | None, mode: str
    ) -> tuple[list[tuple[int, float]], bool]:
        dense = self._dense_search(vec, n, allowed)
        if mode == "dense":
            return dense, len(dense) < n
        r = self.settings.retrieval
        convex = r.fusion == "convex"
        definitions = self.bm25.definitions(query, allowed) if convex and r.definition_weight > 0 else {}
        bm25, bm25_of_dense = self.bm25.search_scoring(query, n, allowed, also=[i for i, _ in dense] + list(definitions))
        exhausted = len(dense) < n and len(bm25) < n
        if not convex:
            lists = [[i for i, _ in dense], [i for i, _ in bm25]]
            return reciprocal_rank_fusion(lists, r.rrf_k, (r.dense_weight, 1.0 - r.dense_weight)), exhausted
        return fuse(self.fusion_inputs(query, vec, dense, bm25, bm25_of_dense, r, definitions), r), exhausted

    def fusion_inputs(
        self, query: str, vec: np.ndarray, dense: list[tuple[int, float]], bm25: list[tuple[int, float]],
        bm25_of_dense: dict[int, float], r: RetrievalSettings, definitions: dict[int, float] | None = None,
    ) -> FusionInputs:
        """Every score convex fusion needs for the candidates of both retrievers; the priors only
        where ``r`` gives them a weight. ``definitions`` (``Bm25Index.definitions``, its chunks
        scored in ``bm25_of_dense``): the chunks defining a name the question writes as code; those
        of a name defined in at most ``DEFINITIONS_JOINING`` files join the candidates."""
        definitions = definitions or {}
        joining = [i for i, w in definitions.items() if w >= 1.0 / DEFINITIONS_JOINING]
        # Convex fusion wants both scores of every candidate: BM25 scored the dense ones already;
        # the dense index scores the BM25-only ones from their stored vectors.
        dense_scores = dict(dense)
        dense_scores.update(self.dense.scores_of(vec, [i for i, _ in bm25 if i not in dense_scores]
                                                 + [i for i in joining if i not in dense_scores]))
        inputs = FusionInputs([i for i, _ in dense] + [i for i, _ in bm25] + joining, dense_scores,
                              {**bm25_of_dense, **dict(bm25)}, definitions=definitions)
        if r.file_weight > 0 or r.file_dense_weight > 0 or r.kind_bias:
            inputs.files, inputs.kinds = self.bm25.file_scores(query, inputs.candidates)
        if r.file_dense_weight > 0:
            inputs.file_dense = self._file_dense(vec, inputs.candidates)
        if r.symbol_weight > 0:
            inputs.symbols = self.bm25.symbol_scores(query, inputs.candidates)
        if r.path_weight > 0:
            inputs.paths = self.bm25.path_scores(query, inputs.candidates)
        if r.speaker_weight > 0:
            inputs.speakers = self.bm25.speaker_shares(query, inputs.candidates)
        if r.test_bias and not asks_about_tests(query):
            inputs.tests = self.bm25.test_chunks(inputs.candidates)
        return inputs

    def _file_dense(self, vec: np.ndarray, candidates: list[int]) -> dict[int, float]:
        """Each candidate's file-level dense score: the best cosine among all the chunks of its file
        (candidates that are no file are left out)."""
        members = self.bm25.file_members(candidates)
        if not members:
            return {}
        # Candidates of one file share its member array: score each file once, in numpy.
        files = {id(ms): ms for ms in members.values()}
        every = np.unique(np.concatenate(list(files.values())))
        cos = self.dense.scores_of(vec, every.tolist())
        known = np.fromiter(cos.keys(), dtype=np.int64, count=len(cos))
        order = np.argsort(known)
        known, vals = known[order], np.fromiter(cos.values(), dtype=np.float64, count=len(cos))[order]
        best: dict[int, float] = {}
        for key, ms in files.items():
            pos = np.minimum(np.searchsorted(known, ms), max(known.size - 1, 0))
            hit = known[pos] == ms if known.size else np.zeros(ms.size, dtype=bool)
            best[key] = float(vals[pos[hit]].max()) if hit.any() else -1.0
        return {cid: best[id(ms)] for cid, ms in members.items()}

    def _load(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        if not ranked:
            return []
        ids = [i for i, _ in ranked]
        with self.store.session() as s:
            rows = {c.id: (c, src) for c, src in s.execute(select(Chunk, Source).join(Source).where(Chunk.id.in_(ids))).all()}
            s.expunge_all()
        return [Hit(rows[i][0], rows[i][1], score) for i, score in ranked if i in rows]

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        assert self.reranker is not None
        from lorebase.index.texts import indexed_text

        scores = self.reranker.scores(query, [indexed_text(h.source.title, h.chunk.text) for h in hits])
        rescored = [Hit(h.chunk, h.source, s) for h, s in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda h: -h.score)

    def _with_neighbors(self, hits: list[Hit], n: int) -> list[Hit]:
        """Each hit widened by up to ``n`` adjacent chunks of its source on each side (text and range).
        A joined transcript window is widened from the chunks it joins; joined windows are never
        neighbours themselves (they repeat their chunks)."""
        if not hits:
            return hits
        ranges = [(h.chunk.joins or (h.chunk.ordinal, h.chunk.ordinal)) for h in hits]
        with self.store.session() as s:
            conds = [
                and_(Chunk.source_id == h.chunk.source_id, Chunk.ordinal.between(lo - n, hi + n))
                for h, (lo, hi) in zip(hits, ranges, strict=True)
            ]
            around = s.scalars(select(Chunk).where(or_(*conds)).order_by(Chunk.source_id, Chunk.ordinal)).all()
            s.expunge_all()
        out = []
        for h, (lo, hi) in zip(hits, ranges, strict=True):
            group = [c for c in around
                     if c.source_id == h.chunk.source_id and c.joins is None and lo - n <= c.ordinal <= hi + n]
            out.append(Hit(_merged(group, h.chunk), h.source, h.score))
        return out


@dataclass
class FusionInputs:
    """The scores hybrid (convex) fusion ranks the candidates by; see ``fuse``."""

    candidates: list[int]  # the dense list then the BM25 list (duplicates allowed)
    dense: dict[int, float]  # cosine of each candidate
    bm25: dict[int, float]  # chunk-level BM25 of each candidate
    files: dict[int, float] = field(default_factory=dict)  # file-level BM25 of each candidate's file
    kinds: dict[int, str] = field(default_factory=dict)  # source kind of each candidate
    file_dense: dict[int, float] = field(default_factory=dict)  # best cosine among its file's chunks
    symbols: dict[int, float] = field(default_factory=dict)  # symbol-level BM25 (names only)
    speakers: dict[int, float] = field(default_factory=dict)  # share of its words the question's named speakers say
    paths: dict[int, float] = field(default_factory=dict)  # path-level BM25 of its file
    definitions: dict[int, float] = field(default_factory=dict)  # 1/files defining a code name the question writes
    tests: set[int] = field(default_factory=set)  # candidates of test files, for a question not about tests


def fuse(inputs: FusionInputs, r: RetrievalSettings) -> list[tuple[int, float]]:
    """Convex fusion of dense and BM25 plus the priors: ``file_weight``, ``file_dense_weight``,
    ``symbol_weight`` and ``path_weight`` times the min-max normalised file BM25, file dense,
    symbol BM25 and path BM25 scores; the kind bias; ``definition_weight`` times the weight of a
    chunk defining a name the question writes as code; ``speaker_weight`` times the share of a
    transcript window's words that the speakers the question names say (as is: a share is
    comparable across windows); and ``test_bias`` for the chunks of test files when the question
    is not about tests (``inputs.tests``). Kept apart from the retrievers so the weights can be chosen on
    cached inputs."""
    extra = prior_terms(inputs.candidates, inputs.files, inputs.kinds, r.file_weight, r.kind_bias)
    for weight, scores in ((r.file_dense_weight, inputs.file_dense), (r.symbol_weight, inputs.symbols),
                           (r.path_weight, inputs.paths)):
        if weight > 0 and scores:
            for cid, x in _normalised(scores).items():
                extra[cid] = extra.get(cid, 0.0) + weight * x
    if r.definition_weight > 0:
        for cid, w in inputs.definitions.items():
            extra[cid] = extra.get(cid, 0.0) + r.definition_weight * w
    if r.speaker_weight > 0:
        for cid, share in inputs.speakers.items():
            extra[cid] = extra.get(cid, 0.0) + r.speaker_weight * share
    for cid in inputs.tests:
        extra[cid] = extra.get(cid, 0.0) + r.test_bias
    return convex_fusion(inputs.candidates, inputs.dense, inputs.bm25, r.dense_weight, extra)


def _normalised(scores: dict[int, float]) -> dict[int, float]:
    """Min-max over the values; nothing when they have no spread."""
    vals = np.asarray(list(scores.values()), dtype=np.float64)
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        return {}
    return {cid: (v - lo) / (hi - lo) for cid, v in scores.items()}


def prior_terms(
    candidates: list[int], files: dict[int, float], kinds: dict[int, str], file_weight: float, kind_bias: dict[str, float]
) -> dict[int, float]:
    """What hybrid fusion adds to each candidate's fused score: ``file_weight`` times its file's
    file-level BM25 score (min-max normalised over the candidates' files), plus the bias of its
    source kind."""
    ids = list(dict.fromkeys(candidates))
    if not ids:
        return {}
    f = np.asarray([files.get(i, 0.0) for i in ids], dtype=np.float64)
    lo, hi = float(f.min()), float(f.max())
    norm = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    return {i: file_weight * float(x) + kind_bias.get(kinds.get(i, ""), 0.0) for i, x in zip(ids, norm, strict=True)}


def _merged(group: list[Chunk], center: Chunk) -> Chunk:
    """A detached chunk spanning ``group`` (ordered), keeping the centre chunk's id and ordinal."""
    if len(group) <= 1:
        return center

    def span(lo: list[Any], hi: list[Any]) -> tuple[Any, Any]:
        lo_v = [v for v in lo if v is not None]
        hi_v = [v for v in hi if v is not None]
        return (min(lo_v) if lo_v else None, max(hi_v) if hi_v else None)

    start_line, end_line = span([c.start_line for c in group], [c.end_line for c in group])
    start_time, end_time = span([c.start_time for c in group], [c.end_time for c in group])
    return Chunk(
        id=center.id,
        source_id=center.source_id,
        ordinal=center.ordinal,
        text="\n".join(c.text for c in group),
        start_line=start_line,
        end_line=end_line,
        start_time=start_time,
        end_time=end_time,
        content_hash=center.content_hash,
        meta=dict(center.meta or {}),
        indexed=center.indexed,
    )
