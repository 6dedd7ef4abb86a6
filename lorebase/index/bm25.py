"""Lexical retrieval: BM25 (bm25s) over the code-aware, stemmed tokens of every chunk in the store.

Kept in memory and rebuilt from the store when the store's chunk set has changed: every chunk
added or removed moves the change log's last sequence number (lorebase.store.change_log), on this
replica or any other; chunks are never edited in place (ingest replaces them with new rows).

Beside the chunk index sits a file-level one: each code or doc source (a whole file: its path and
all its chunks) is one document. A question about how something works names words spread over
a file (the class, the helper it calls, the setting it reads); the file-level score lets the
hybrid search prefer chunks of the file that holds most of them.

And a symbol-level one: each code chunk the Python chunker cut at a definition is also a short
document of its names only (the path, the qualified symbol such as ``FlaskGroup.get_command``,
the class it sits in, its signature), each other code chunk of its path and module name, and each
doc chunk of its path and heading path. A question that describes a definition ("the CLI group
class's command retrieval method") meets its name there without the body's words diluting it; one
that names a file meets all of the file's chunks, its head included.

Transcripts and everything else are two families with their own word statistics: a search whose
scope lies within one of them scores with that family's IDF and average length, so a home's code
does not change how its lectures rank (``_family_scores``); a search across both scores with the
pooled statistics.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from lorebase.index.abbreviations import Abbreviations
from lorebase.index.code_tokens import tokenize
from lorebase.index.definitions import DefinitionIndex, code_names, defined_name
from lorebase.index.test_files import is_test_path
from lorebase.index.texts import indexed_text
from lorebase.store.models import Chunk, Source

if TYPE_CHECKING:
    from lorebase.store import Store

log = logging.getLogger(__name__)

FILE_KINDS = ("code", "doc")  # sources scored as whole files too


def store_signature(store: Store) -> tuple[int, int]:
    """(number of chunks, last change-log sequence number): changes with every insert or delete of chunks."""
    from lorebase.store.change_log import last_seq

    with store.session() as s:
        count = s.scalar(select(func.count(Chunk.id)))
        return int(count or 0), last_seq(s)


class Bm25Index:
    """BM25 over all chunks of the store; ``search`` refreshes it first when the store changed."""

    def __init__(self, store: Store, stemmer: str | None = None, k1: float = 1.5, b: float = 0.75,
                 transcript_b: float | None = None, abbreviation_weight: float = 0.0) -> None:
        self.store = store
        self.stemmer = stemmer
        # code, doc and file scores: the query's abbreviations as code writes them (lorebase.index.abbreviations)
        # scored as a second query with this weight; 0: off
        self.abbreviation_weight = abbreviation_weight
        self._abbreviations: Abbreviations | None = None
        # the chunk index's parameters (transcript chunks: their own length normalisation); the file,
        # symbol and path indexes keep bm25s's defaults
        self.k1, self.b = k1, b
        self.transcript_b = b if transcript_b is None else transcript_b
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        # (chunk ids in document order, bm25s model or None, vocabulary): replaced whole, never edited,
        # so a search running during a rebuild sees one consistent version. _files likewise:
        # (file-level model or None, its vocabulary, each chunk's file document or -1, each chunk's kind,
        # the chunk ids those arrays follow).
        self._state: tuple[np.ndarray, Any, dict[str, int]] = (np.zeros(0, dtype=np.int64), None, {})
        # (the pooled model they belong to, the same model scored with each family's own statistics or
        # None when the index holds one family, which chunks in the model's order are transcripts): see
        # ``_family_scores``. Set after _state, so a search checks the first is the model it holds.
        self._families: tuple[Any, Any, np.ndarray] = (None, None, np.zeros(0, dtype=bool))
        self._files: tuple[Any, dict[str, int], np.ndarray, np.ndarray, np.ndarray] = (
            None, {}, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64))
        self._members: list[np.ndarray] = []  # per file document: its chunk ids
        self._paths: tuple[Any, dict[str, int]] = (None, {})  # path-level model over the file documents' paths
        self._tests: frozenset[int] = frozenset()  # the chunks of test files (lorebase.index.test_files)
        # (per transcript chunk id: its source id and the words each speaker says in it; per source:
        # its speakers in order of first appearance)
        self._speakers: tuple[dict[int, tuple[str, dict[str, int]]], dict[str, list[str]]] = ({}, {})
        # (symbol-level model or None, its vocabulary, each chunk's symbol document or -1, the chunk ids it follows)
        self._symbols: tuple[Any, dict[str, int], np.ndarray, np.ndarray] = (
            None, {}, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self._definitions = DefinitionIndex()  # defined name -> the chunks defining it (lorebase.index.definitions)
        # compound tokens by their letters alone: "lcd" -> the ids of "l_c_d_", "l.c.d" (a transcript's acronyms)
        self._joined: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return int(self._state[0].size)

    def refresh(self, force: bool = False) -> bool:
        """Rebuild from the store if it changed since the last build. True when rebuilt."""
        sig = store_signature(self.store)
        if not force and sig == self._signature:
            return False
        with self._lock:
            if not force and sig == self._signature:
                return False
            self._build(sig)
        return True

    def _build(self, sig: tuple[int, int]) -> None:
        import bm25s

        t0 = time.monotonic()
        with self.store.session() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.text, Source.title, Chunk.source_id, Source.kind, Chunk.meta, Source.path)
                .join(Source, Chunk.source_id == Source.id)
                .order_by(Chunk.id)
            ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        bm25 = None
        files: tuple[Any, dict[str, int], np.ndarray, np.ndarray, np.ndarray] = (
            None, {}, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), ids[:0])
        symbols: tuple[Any, dict[str, int], np.ndarray, np.ndarray] = (None, {}, np.zeros(0, dtype=np.int64), ids[:0])
        families: tuple[Any, Any, np.ndarray] = (None, None, np.zeros(0, dtype=bool))
        if rows:
            tokens = [tokenize(self._chunk_text(r), self.stemmer) for r in rows]
            bm25 = bm25s.BM25(k1=self.k1, b=self.b)
            bm25.index(tokens, show_progress=False)
            talk = np.fromiter((r[4] == "transcript" for r in rows), dtype=bool, count=len(rows))
            if self.transcript_b != self.b and talk.any():
                _rescore(bm25, tokens, [(np.arange(talk.size), self.transcript_b)], self.k1, only=talk)
            if talk.any() and not talk.all():
                families = (bm25, _family_scores(bm25, tokens, talk, self.k1, self.b, self.transcript_b), talk)
            files = (*self._file_index(rows, tokens), ids)
            symbols = (*self._symbol_index(rows, self.stemmer), ids)
        chunk_doc = files[2]
        members: list[list[int]] = [[] for _ in range(int(chunk_doc.max()) + 1 if chunk_doc.size else 0)]
        for cid, d in zip(ids.tolist(), chunk_doc.tolist(), strict=True):
            if d >= 0:
                members[d].append(cid)
        self._state = (ids, bm25, dict(bm25.vocab_dict) if bm25 is not None else {})
        self._families = families
        self._joined = _joined_forms(self._state[2])
        self._files = files
        self._symbols = symbols
        self._abbreviations = self._abbreviations_of(symbols[1])
        self._members = [np.asarray(m, dtype=np.int64) for m in members]
        self._paths = _path_index(rows, chunk_doc)
        self._tests = frozenset(r[0] for r in rows if r[4] in FILE_KINDS and is_test_path(r[6]))
        self._speakers = _speaker_index(rows)
        self._definitions = DefinitionIndex((r[0], r[3], defined_name(r[4], r[5])) for r in rows)
        self._signature = sig
        log.debug("bm25 index built over %d chunks in %.2f s", len(rows), time.monotonic() - t0)

    def _abbreviations_of(self, names: dict[str, int]) -> Abbreviations | None:
        if self.abbreviation_weight <= 0 or not names:
            return None
        from lorebase.index.english import english_words

        return Abbreviations(names, self.stemmer, english_words())

    def _expanded(self, tokens: list[str]) -> list[str]:
        """The abbreviations of the query's ``tokens`` that the index's names use (none when off)."""
        abbreviations = self._abbreviations
        return abbreviations.expand(tokens) if abbreviations is not None else []

    @staticmethod
    def _chunk_text(row: Any) -> str:
        """What BM25 indexes for a chunk (row: id, text, title, source id, kind, meta, path)."""
        return indexed_text(row[2], row[1])

    @staticmethod
    def _file_index(rows: Sequence[Any], tokens: list[list[str]]) -> tuple[Any, dict[str, int], np.ndarray, np.ndarray]:
        """One document per code or doc source: its chunks' tokens (the first carries the path) together."""
        import bm25s

        doc_of: dict[str, int] = {}
        docs: list[list[str]] = []
        chunk_doc = np.full(len(rows), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            if r[4] not in FILE_KINDS:
                continue
            d = doc_of.get(r[3])
            if d is None:
                d = doc_of[r[3]] = len(docs)
                docs.append([])
            docs[d].extend(tokens[i])
            chunk_doc[i] = d
        kinds = np.asarray([r[4] for r in rows], dtype=object)
        if not docs:
            return None, {}, chunk_doc, kinds
        model = bm25s.BM25()
        model.index([d or ["_"] for d in docs], show_progress=False)
        return model, dict(model.vocab_dict), chunk_doc, kinds

    @staticmethod
    def _symbol_index(rows: Sequence[Any], stemmer: str | None) -> tuple[Any, dict[str, int], np.ndarray]:
        """One short document per code or doc chunk that has names: see the module docstring."""
        import bm25s

        docs: list[list[str]] = []
        chunk_doc = np.full(len(rows), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            text = symbol_text(r[4], r[6], r[5])
            if text:
                chunk_doc[i] = len(docs)
                docs.append(tokenize(text, stemmer) or ["_"])
        if not docs:
            return None, {}, chunk_doc
        model = bm25s.BM25()
        model.index(docs, show_progress=False)
        return model, dict(model.vocab_dict), chunk_doc

    def symbol_scores(self, query: str, chunk_ids: Iterable[int]) -> dict[int, float]:
        """For each chunk id held: the BM25 score of its symbol document (0 when it has none)."""
        self.refresh()
        model, vocab, chunk_doc, ids = self._symbols
        tokens = tokenize(query, self.stemmer)
        return _per_chunk(model, tokens, vocab, chunk_doc, ids, _held(ids, chunk_ids),
                          self._expanded(tokens), self.abbreviation_weight)

    def definitions(self, query: str, allowed: np.ndarray | None = None) -> dict[int, float]:
        """The chunks (within ``allowed``) defining a name ``query`` writes as code, each weighted
        1/n for a name defined in n files (lorebase.index.definitions)."""
        names = code_names(query)
        if not names:
            return {}
        self.refresh()
        return self._definitions.weights(names, allowed)

    def speaker_shares(self, query: str, chunk_ids: Iterable[int]) -> dict[int, float]:
        """For each transcript chunk id held whose source has a speaker the query names
        (lorebase.index.speakers): the share of the chunk's words those speakers say. Chunks of
        sources it names nobody of are left out."""
        from lorebase.index.speaker_turns import named_share
        from lorebase.index.speakers import named_speakers

        self.refresh()
        words, speakers = self._speakers
        named: dict[str, set[str]] = {}
        out: dict[int, float] = {}
        for cid in dict.fromkeys(chunk_ids):
            entry = words.get(cid)
            if entry is None:
                continue
            src, counts = entry
            who = named.get(src)
            if who is None:
                who = named[src] = named_speakers(query, speakers.get(src, []))
            if who:
                out[cid] = named_share(counts, who)
        return out

    def file_scores(self, query: str, chunk_ids: Iterable[int]) -> tuple[dict[int, float], dict[int, str]]:
        """For each chunk id held: the file-level BM25 score of its source (0 for sources that are
        not files, or where no query term occurs), and its source kind."""
        self.refresh()
        model, vocab, chunk_doc, kinds, ids = self._files
        held = _held(ids, chunk_ids)
        pos = np.searchsorted(ids, np.asarray(held, dtype=np.int64)) if held else np.zeros(0, dtype=np.int64)
        kind_of = {cid: str(kinds[p]) for cid, p in zip(held, pos, strict=True)} if kinds.size else {}
        query_tokens = tokenize(query, self.stemmer)
        doc_scores = _scores(model, query_tokens, vocab, self._expanded(query_tokens), self.abbreviation_weight)
        if doc_scores is None:
            return {cid: 0.0 for cid in held}, kind_of
        out = {}
        for cid, p in zip(held, pos, strict=True):
            d = chunk_doc[p]
            out[cid] = float(doc_scores[d]) if d >= 0 else 0.0
        return out, kind_of

    def path_scores(self, query: str, chunk_ids: Iterable[int]) -> dict[int, float]:
        """For each chunk id held: the BM25 score of its file's path alone (0 for sources that are
        not files). A question naming "the BigQuery dialect" meets ``dialect_bigquery.py`` here,
        where the rare path word is not diluted by the file's body."""
        self.refresh()
        model, vocab = self._paths
        _, _, chunk_doc, _, ids = self._files
        return _per_chunk(model, tokenize(query), vocab, chunk_doc, ids, _held(ids, chunk_ids))

    def test_chunks(self, chunk_ids: Iterable[int]) -> set[int]:
        """The chunk ids among ``chunk_ids`` that belong to a test file (`test_files.is_test_path`), as
        of the index's last build. No refresh: the ids come from a search that refreshed it, and the
        store's signature is a count over every chunk (about 2 ms a query at 37,000 chunks)."""
        tests = self._tests
        return {cid for cid in chunk_ids if cid in tests}

    def file_members(self, chunk_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """For each chunk id of a file (a code or doc source): the ids of all that file's chunks."""
        self.refresh()
        _, _, chunk_doc, _, ids = self._files
        members = self._members
        held = _held(ids, chunk_ids)
        out = {}
        for cid in held:
            d = int(chunk_doc[np.searchsorted(ids, cid)])
            if 0 <= d < len(members):
                out[cid] = members[d]
        return out

    def holders(self, tokens: Iterable[str], allowed: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """For each token (as ``tokenize`` writes it): the chunks of ``allowed`` ids (None: all) that
        hold it, or a compound written with it, without separators ("lcd": ``l_c_d_``), as sorted
        positions in the index; empty for a token the index never saw."""
        self.refresh()
        ids, bm25, vocab = self._state
        joined = self._joined
        wanted = list(dict.fromkeys(tokens))
        none = np.zeros(0, dtype=np.int64)
        if bm25 is None:
            return dict.fromkeys(wanted, none)
        indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
        inside = np.isin(ids, allowed) if allowed is not None else np.ones(ids.size, dtype=bool)
        out: dict[str, np.ndarray] = {}
        for t in wanted:
            tids = ([vocab[t]] if t in vocab else []) + joined.get(t, [])
            docs = np.unique(np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in tids])) if tids else none
            out[t] = docs[inside[docs]] if docs.size else none
        return out

    def _model_for(self, pooled: Any, mask: np.ndarray | None) -> Any:
        """The family-scored model when the search stays within transcripts or within the rest (a
        meeting's questions, a repository's), else the pooled one, whose scores compare across both."""
        owner, family, talk = self._families
        if family is None or owner is not pooled or mask is None or talk.size != mask.size:
            return pooled  # one family only, a search across both, or a rebuild swapping the two in
        inside = talk[mask > 0]
        return family if inside.size and (inside.all() or not inside.any()) else pooled

    def search(self, query: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, score) pairs with a positive score, best first, within ``allowed`` ids."""
        return self.search_scoring(query, n, allowed)[0]

    def search_scoring(
        self, query: str, n: int, allowed: np.ndarray | None = None, also: Iterable[int] = ()
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """``search``, plus the score of each chunk id in ``also`` (0 where no query term occurs;
        ids this index does not hold yet are left out). One scoring pass serves both."""
        self.refresh()
        ids, bm25, vocab = self._state
        if bm25 is None:
            return [], {}
        query_tokens = tokenize(query, self.stemmer)
        tokens = [t for t in query_tokens if t in vocab]
        expanded = [t for t in self._expanded(query_tokens) if t in vocab]
        if not tokens and not expanded:
            return [], {i: 0.0 for i in _held(ids, also)}
        mask = None
        if allowed is not None:
            mask = np.isin(ids, allowed).astype(np.float32)
        model = self._model_for(bm25, mask)
        scores = np.asarray(model.get_scores(tokens, weight_mask=mask), dtype=np.float32) if tokens \
            else np.zeros(ids.size, dtype=np.float32)
        if expanded:
            # code's abbreviations count in code, docs and the like; a transcript's words are spoken
            kinds = self._files[3]
            talk = kinds == "transcript" if kinds.size == ids.size else np.zeros(ids.size, dtype=bool)
            scores += self.abbreviation_weight * np.where(
                talk, 0.0, np.asarray(model.get_scores(expanded, weight_mask=mask), dtype=np.float32))
        extra = {}
        for i in _held(ids, also):
            extra[i] = float(scores[np.searchsorted(ids, i)])
        if n <= 0:
            return [], extra
        positive = np.flatnonzero(scores > 0)
        if positive.size > n:
            positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in order], extra


def _joined_forms(vocab: dict[str, int]) -> dict[str, list[int]]:
    joined: dict[str, list[int]] = {}
    for token, tid in vocab.items():
        if any(c in token for c in "._-"):
            joined.setdefault(_SEPARATORS.sub("", token), []).append(tid)
    return joined


_SEPARATORS = re.compile(r"[._\-]+")


def _rescore(model: Any, tokens: list[list[str]], groups: Sequence[tuple[np.ndarray, float]], k1: float,
             only: np.ndarray | None = None) -> bool:
    """Re-score ``model`` in place: the entries of each group's documents (``model``'s numbering)
    get the scores of a BM25 fitted on that group alone with length normalisation ``b``; with
    ``only``, just the entries of the documents it marks. bm25s stores one score per (word,
    document), so a group indexed alone gives the same pairs with other values. False (nothing
    changed) when the layouts do not line up."""
    import bm25s

    mine = model.scores
    vocab = model.vocab_dict
    n_docs = len(tokens)
    # the key (word id * documents + document) of each stored entry, in storage order
    entry_word = np.repeat(np.arange(mine["indptr"].size - 1, dtype=np.int64), np.diff(mine["indptr"]))
    keys = entry_word * n_docs + mine["indices"].astype(np.int64)
    order = np.argsort(keys, kind="stable")
    data = mine["data"].copy()
    for members, b in groups:
        sub = bm25s.BM25(k1=k1, b=b)
        sub.index([tokens[i] for i in members.tolist()], show_progress=False)
        theirs = sub.scores
        word_of = np.full(len(sub.vocab_dict), -1, dtype=np.int64)
        for token, tid in sub.vocab_dict.items():
            word_of[tid] = vocab.get(token, -1)
        words = word_of[np.repeat(np.arange(theirs["indptr"].size - 1, dtype=np.int64), np.diff(theirs["indptr"]))]
        wanted = words * n_docs + members[theirs["indices"].astype(np.int64)]
        pos = order[np.minimum(np.searchsorted(keys, wanted, sorter=order), keys.size - 1)]
        if (words < 0).any() or not np.array_equal(keys[pos], wanted) \
                or pos.size != int(np.isin(mine["indices"], members).sum()):
            log.warning("bm25: could not re-score %d chunks on their own statistics (score layouts differ)", members.size)
            return False
        keep = only[mine["indices"][pos]] if only is not None else np.ones(pos.size, dtype=bool)
        data[pos[keep]] = theirs["data"][keep]
    mine["data"] = data.astype(mine["data"].dtype)
    return True


def _family_scores(model: Any, tokens: list[list[str]], talk: np.ndarray, k1: float, b: float, talk_b: float) -> Any:
    """A copy of ``model`` whose transcript chunks (``talk``) are scored with the statistics of the
    transcripts alone (IDF, average length, ``talk_b``) and every other chunk with those of the rest;
    None if that could not be done.

    Talk and code use words at other rates ("test" is rare in a meeting and everywhere in a
    repository): counted over the whole index, a home's repositories decide how much a word counts
    in its lectures (on the public home, its 35,000 code chunks cost the 8 QMSum dev meetings'
    questions one hit at 1 and one at 5; docs/benchmarks.md). A search within one family uses this
    copy. A search across both keeps the pooled scores: each family's IDFs are on the scale of its
    own size, so a small family's would all be lower and its chunks would lose across the board."""
    import copy

    family = copy.copy(model)
    family.scores = dict(model.scores)  # its own dict: re-scoring replaces its data, not the pooled one's
    groups = [(np.flatnonzero(talk), talk_b), (np.flatnonzero(~talk), b)]
    return family if _rescore(family, tokens, groups, k1) else None


def _path_index(rows: Sequence[Any], chunk_doc: np.ndarray) -> tuple[Any, dict[str, int]]:
    """A BM25 model with one document per file document (``chunk_doc``'s numbering): its path's
    tokens, unstemmed. A path is names: "BigQuery" in a question is the whole token ``bigquery``,
    which the stemmer would have turned into ``bigqueri`` as a path part."""
    import bm25s

    paths: dict[int, str] = {}
    for r, d in zip(rows, chunk_doc.tolist(), strict=True):
        if d >= 0 and d not in paths:
            paths[d] = str(r[6] or r[2] or "")
    if not paths:
        return None, {}
    model = bm25s.BM25()
    model.index([tokenize(paths[d]) or ["_"] for d in range(len(paths))], show_progress=False)
    return model, dict(model.vocab_dict)


def _speaker_index(rows: Sequence[Any]) -> tuple[dict[int, tuple[str, dict[str, int]]], dict[str, list[str]]]:
    """Each chunk with speakers (rows: id, text, title, source id, kind, meta, path): its source and
    each speaker's word count; each such source's speakers in order of first appearance."""
    from lorebase.index.speaker_turns import speaker_words

    words: dict[int, tuple[str, dict[str, int]]] = {}
    speakers: dict[str, dict[str, None]] = {}
    for r in rows:
        names = (r[5] or {}).get("speakers") if isinstance(r[5], dict) else None
        if not names:
            continue
        words[int(r[0])] = (str(r[3]), speaker_words(r[1], names))
        seen = speakers.setdefault(str(r[3]), {})
        for n in names:
            seen.setdefault(n)
    return words, {src: list(names) for src, names in speakers.items()}


def symbol_text(kind: str, path: str | None, meta: dict[str, Any] | None) -> str:
    """The names a chunk is known by: path and qualified symbol, class context and signature for
    code cut at a definition; path and module name for the code between definitions (a file's
    head, its constants), so that "what does FILE do" meets the head as well as every function
    named by that path; path and heading path for a doc. Empty for anything else."""
    meta = meta or {}
    if kind == "code" and (meta.get("symbol_kind") == "module" or not meta.get("symbol")):
        parts = [path or "", str(meta.get("symbol") or "")]
    elif kind == "code":
        parts = [path or "", str(meta["symbol"]), str(meta.get("context") or ""), str(meta.get("signature") or "")]
    elif kind == "doc" and meta.get("heading_path"):
        parts = [path or "", " ".join(str(h) for h in meta["heading_path"])]
    else:
        return ""
    return "\n".join(p for p in parts if p)



def _scores(model: Any, query_tokens: list[str], vocab: dict[str, int], expanded: Sequence[str] = (),
            weight: float = 0.0) -> np.ndarray | None:
    """Every document's BM25 score for the query tokens, plus ``weight`` times that of the
    ``expanded`` ones; None when no token of either is in the vocabulary."""
    if model is None:
        return None
    tokens = [t for t in query_tokens if t in vocab]
    extra = [t for t in expanded if t in vocab] if weight > 0 else []
    if not tokens and not extra:
        return None
    scores = np.asarray(model.get_scores(tokens), dtype=np.float32) if tokens else None
    if extra:
        more = weight * np.asarray(model.get_scores(extra), dtype=np.float32)
        scores = more if scores is None else scores + more
    return scores


def _per_chunk(model: Any, query_tokens: list[str], vocab: dict[str, int], chunk_doc: np.ndarray, ids: np.ndarray,
               held: list[int], expanded: Sequence[str] = (), weight: float = 0.0) -> dict[int, float]:
    """Each held chunk's score: the BM25 score of the document it maps to (0 where it maps to none,
    or where no query token is in the vocabulary), the ``expanded`` tokens counting ``weight``."""
    doc_scores = _scores(model, query_tokens, vocab, expanded, weight)
    if doc_scores is None:
        return {cid: 0.0 for cid in held}
    out = {}
    for cid in held:
        d = int(chunk_doc[np.searchsorted(ids, cid)])
        out[cid] = float(doc_scores[d]) if d >= 0 else 0.0
    return out

def _held(ids: np.ndarray, wanted: Iterable[int]) -> list[int]:
    """The ids of ``wanted`` present in the sorted array ``ids``."""
    want = np.asarray(list(wanted), dtype=np.int64)
    if want.size == 0 or ids.size == 0:
        return []
    pos = np.minimum(np.searchsorted(ids, want), ids.size - 1)
    return [int(i) for i in want[ids[pos] == want]]
