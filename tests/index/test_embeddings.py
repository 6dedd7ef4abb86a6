"""The embedder: normalized vectors, llama-index interface, bf16 where native, one model per process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype
from lorebase.settings import load_settings


def test_vectors_are_normalized_and_match_the_llama_index_interface(embedder: LorebaseEmbedding) -> None:
    vecs = embedder.embed(["How do I install it?", "def main(): pass", ""])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    q = np.asarray(embedder.get_query_embedding("How do I install it?"))
    assert float(q @ vecs[0]) > 0.999
    batch = np.asarray(embedder.get_text_embedding_batch(["def main(): pass"]))
    assert float(batch[0] @ vecs[1]) > 0.999


def test_precision_follows_the_setting_and_the_cpu(embedder: LorebaseEmbedding, tmp_path: Path) -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = " avx512_bf16" in flags or " amx_bf16" in flags or torch.cpu._is_avx512_bf16_supported()
    assert resolve_dtype("auto") == ("bfloat16" if native else "float32")
    assert resolve_dtype("float32") == "float32"

    s = load_settings(home=tmp_path / "home", index={"embed_dtype": "float32"})
    fp32 = LorebaseEmbedding.from_settings(s)
    assert fp32.dtype == "float32" and next(fp32._model.parameters()).dtype == torch.float32
    assert fp32._model is not embedder._model or embedder.dtype == "float32"
    # bf16 and fp32 agree closely on the direction of each vector.
    texts = ["gradient descent on the loss", "class LruCache: evict the oldest entry"]
    cos = (fp32.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert cos.min() > 0.99


def test_model_is_loaded_once_per_process(embedder: LorebaseEmbedding) -> None:
    again = LorebaseEmbedding(embedder.path, model_name="same", dtype=embedder.dtype)
    assert again._model is embedder._model


def test_a_text_longer_than_the_model_reads_is_pooled_from_pieces_under_its_title(embedder: LorebaseEmbedding) -> None:
    pooled = LorebaseEmbedding(embedder.path, model_name="same", dtype=embedder.dtype, long_texts="pool")
    # A file whose first 300 tokens are about one thing and the rest about another.
    head = "\n".join(f"def parse_header_{i}(line): return line.split(':', 1)" for i in range(25))
    tail = "\n".join(f"def send_email_{i}(to, subject): smtp.sendmail(to, subject)" for i in range(25))
    long = f"mail/tools.py\n{head}\n{tail}"
    pieces, owners, weights = pooled._pieces([long, "short text"])
    assert len(pieces) >= 3 and owners.tolist() == [0] * (len(pieces) - 1) + [1]
    assert all(p.startswith("mail/tools.py\n") for p in pieces[:-1])  # each piece keeps the path
    assert all(len(embedder._model.tokenizer(p).input_ids) <= embedder._model.max_seq_length for p in pieces)
    assert weights[:-1].sum() == pytest.approx(1.0) and weights[-1] == 1.0
    assert "send_email_24" in pieces[-2]  # the end of the text is read

    query = embedder.embed_query("sending an email over smtp")
    truncated, whole = embedder.embed([long])[0], pooled.embed([long])[0]
    assert float(np.linalg.norm(whole)) == pytest.approx(1.0, abs=1e-5)
    # Truncated, the vector saw only the header parsers; pooled, it sees the mail functions too.
    assert float(query @ whole) > float(query @ truncated) + 0.05
    # A text that fits is embedded as it was.
    short = ["def main(): pass"]
    assert float(pooled.embed(short)[0] @ embedder.embed(short)[0]) > 0.9999


def test_the_setting_picks_truncation_or_pooling(tmp_path: Path) -> None:
    assert LorebaseEmbedding.from_settings(load_settings(home=tmp_path / "a")).long_texts == "truncate"
    s = load_settings(home=tmp_path / "b", index={"embed_long_texts": "pool"})
    assert LorebaseEmbedding.from_settings(s).long_texts == "pool" and LorebaseEmbedding.configured(s).long_texts == "pool"
