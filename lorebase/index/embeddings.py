"""The embedder: a sentence-transformers model behind llama-index's embedding interface.

One model per (folder, precision) per process: loading it costs a second and ~100 MB, and the
syncer, the search service and the evaluation all want the same one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

from lorebase.errors import ModelNotAvailable, StoreError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from lorebase.settings import Settings

_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()
_QUERY_THREADS_LOCK = threading.Lock()


def cpu_supports_bf16() -> bool:
    """True where bf16 matrix maths is native (AVX512-BF16 or AMX); elsewhere bf16 is slower than fp32."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in probes):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_dtype(setting: str) -> str:
    """The precision to run in: the setting, with ``auto`` decided by the CPU (or GPU when present)."""
    if setting != "auto":
        return setting
    import torch

    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_supports_bf16() else "float32"


def load_sentence_model(path: Path, dtype: str) -> SentenceTransformer:
    """The sentence-transformers model in this folder, loaded once per process."""
    key = (str(Path(path).resolve()), dtype)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            if not Path(path).is_dir():
                raise ModelNotAvailable(f"embedder folder {path} does not exist")
            device = "cuda" if torch.cuda.is_available() else "cpu"
            kwargs: dict[str, Any] = {"dtype": torch.bfloat16} if dtype == "bfloat16" else {}
            try:
                model = SentenceTransformer(str(path), device=device, model_kwargs=kwargs, local_files_only=True)
            except (OSError, ValueError) as e:
                raise ModelNotAvailable(f"cannot load the embedder from {path}: {e}") from e
            model.eval()
            _MODELS[key] = model
        return model


def active_embedder(settings: Settings) -> tuple[Path, str, str | None]:
    """(folder, name, base) of the embedder to use: the configured one, unless the saved index
    was embedded by an embedder tuned from it (its manifest names the tuned folder)."""
    from lorebase.index.dense import MANIFEST_NAME, IndexDamaged, Manifest
    from lorebase.offline_models import embedder_path

    configured = settings.models.embedder
    manifest = settings.index_dir / MANIFEST_NAME
    if manifest.is_file():
        try:
            m = Manifest.read(manifest)
        except IndexDamaged:
            m = None
        if m is not None and m.embedder_path and m.embedder_base == configured and m.embedder != configured:
            tuned = Path(m.embedder_path)
            if not tuned.is_dir():
                raise StoreError(
                    f"the index in {settings.index_dir} was embedded by the tuned embedder {m.embedder!r}, whose folder "
                    f"{tuned} is gone: run `lorebase index rebuild --configured` to re-embed everything with {configured!r}"
                )
            return tuned, m.embedder, configured
    return embedder_path(settings), configured, None


MAX_PIECES = 8  # a longer text is read for its first 8 pieces (about 2,000 tokens for MiniLM)


class LorebaseEmbedding(BaseEmbedding):
    """Normalized sentence embeddings, as a llama-index embedding model.

    ``model_name`` is what the index manifest records: the configured embedder setting, so a
    change of embedder is caught at load time; or, for an embedder tuned on the corpus, its name,
    with ``base`` the configured embedder it was tuned from.
    """

    path: str
    dtype: str = "float32"
    base: str | None = None
    long_texts: str = "truncate"
    _model: Any = PrivateAttr()

    def __init__(
        self, path: Path | str, model_name: str, dtype: str = "float32", embed_batch_size: int = 64, base: str | None = None,
        long_texts: str = "truncate",
    ) -> None:
        super().__init__(model_name=model_name, path=str(path), dtype=dtype, embed_batch_size=embed_batch_size, base=base,
                         long_texts=long_texts)
        self._model = load_sentence_model(Path(path), dtype)

    @classmethod
    def from_settings(cls, settings: Settings) -> LorebaseEmbedding:
        """The configured embedder, or the embedder tuned from it that the saved index was built with."""
        path, name, base = active_embedder(settings)
        return cls(path, model_name=name, dtype=resolve_dtype(settings.index.embed_dtype),
                   embed_batch_size=settings.index.embed_batch_size, base=base, long_texts=settings.index.embed_long_texts)

    @classmethod
    def configured(cls, settings: Settings) -> LorebaseEmbedding:
        """The configured embedder, whatever the index was built with (to rebuild it with that)."""
        from lorebase.offline_models import embedder_path

        return cls(embedder_path(settings), model_name=settings.models.embedder, dtype=resolve_dtype(settings.index.embed_dtype),
                   embed_batch_size=settings.index.embed_batch_size, long_texts=settings.index.embed_long_texts)

    def switch(self, path: Path | str, model_name: str, base: str | None) -> None:
        """Embed with the model in ``path`` from now on: the index was swapped to it (or back)."""
        model = load_sentence_model(Path(path), self.dtype)
        self._model = model  # the model first: a caller that reads the new name gets the new model
        self.path, self.model_name, self.base = str(path), model_name, base

    @classmethod
    def class_name(cls) -> str:
        return "LorebaseEmbedding"

    @property
    def dim(self) -> int:
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 array (len(texts), dim), each row of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        pieces, owners, weights = self._pieces(texts) if self.long_texts == "pool" else (texts, None, None)
        with torch.inference_mode():
            vecs = self._model.encode(
                pieces,
                batch_size=self.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if owners is not None and weights is not None and len(pieces) > len(texts):
            pooled = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
            np.add.at(pooled, owners, vecs * weights[:, None])
            vecs = pooled
        # Normalize again in fp32: a bf16 model's own normalization is off by up to ~0.2%.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def _pieces(self, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Texts longer than the model reads, cut into pieces it reads whole, each under the text's
        first line (a chunk's path or title): the pieces, the text each belongs to, and each piece's
        share of its text's tokens (the weights of its mean). A text that fits is one piece.

        Why: the model stops at ``max_seq_length`` tokens (256 for MiniLM), and about a fifth of code
        chunks and two fifths of doc chunks are longer, so their vector saw only their start."""
        tok = self._model.tokenizer
        limit = int(self._model.max_seq_length or 0) - 2  # the model adds [CLS] and [SEP]
        if limit <= 0 or not getattr(tok, "is_fast", False):
            return texts, np.arange(len(texts)), np.ones(len(texts), dtype=np.float32)
        pieces: list[str] = []
        owners: list[int] = []
        weights: list[float] = []
        ids = tok(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        for i, (text, offsets) in enumerate(zip(texts, ids["offset_mapping"], strict=True)):
            if len(offsets) <= limit:
                pieces.append(text)
                owners.append(i)
                weights.append(1.0)
                continue
            head, _, body = text.partition("\n")
            head_tokens = len(tok(head, add_special_tokens=False, verbose=False)["input_ids"]) if body else limit
            if head_tokens > limit // 4:  # no title line, or one too long to repeat: plain pieces
                head, head_tokens = "", 0
            start = len(head) + 1 if head else 0
            body_offsets = [o for o in offsets if o[0] >= start]
            room = limit - head_tokens
            parts = [body_offsets[k: k + room] for k in range(0, len(body_offsets), room)][:MAX_PIECES]
            total = sum(len(p) for p in parts)
            for part in parts:
                piece = text[part[0][0]: part[-1][1]]
                pieces.append(f"{head}\n{piece}" if head else piece)
                owners.append(i)
                weights.append(len(part) / total)
        return pieces, np.asarray(owners), np.asarray(weights, dtype=np.float32)

    def embed_query(self, query: str) -> np.ndarray:
        """One query's vector, computed on a single CPU thread.

        A one-sentence forward pass gains little from a second thread, and a parallel region waits
        for its slowest thread: on a small, busy machine (2 cores shared with the generator) two
        threads measured 3-6x slower than one at the median.
        """
        import torch

        if self._model.device.type != "cpu":
            return self.embed([query])[0]
        with _QUERY_THREADS_LOCK:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self.embed([query])[0]
            finally:
                torch.set_num_threads(before)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts).tolist()
