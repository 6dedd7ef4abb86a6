"""Optional second stage: a cross-encoder scores (query, chunk) pairs and reorders the candidates.

Off unless ``index.reranker`` names a local sentence-transformers CrossEncoder folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lorebase.errors import ModelNotAvailable

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


class CrossEncoderReranker:
    def __init__(self, path: Path | str, batch_size: int = 32) -> None:
        self.path = Path(path).expanduser()
        self.batch_size = batch_size
        key = str(self.path.resolve())
        with _LOCK:
            model = _MODELS.get(key)
            if model is None:
                if not (self.path / "config.json").is_file():
                    raise ModelNotAvailable(
                        f"reranker {self.path} is not a model folder (no config.json); set index.reranker "
                        "(LOREBASE_INDEX__RERANKER) to a local cross-encoder folder, or unset it"
                    )
                from sentence_transformers import CrossEncoder

                try:
                    model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)
                except (OSError, ValueError) as e:
                    raise ModelNotAvailable(f"cannot load the reranker from {self.path}: {e}") from e
                _MODELS[key] = model
        self.model = model

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """One relevance score per text, higher is better."""
        if not texts:
            return []
        out = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False)
        return [float(x) for x in out]
