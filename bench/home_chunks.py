"""Every chunk of a public data home as the BM25 build reads it, for benchmarks of the index build."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def home_arguments(description: str) -> argparse.Namespace:
    """--evaldata, --home and --rounds, as every build benchmark takes them."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--home", default="home", help="the data home under --evaldata")
    ap.add_argument("--rounds", type=int, default=3)
    return ap.parse_args()


def home_chunks(evaldata: Path, home: str) -> tuple[Any, list[Any]]:
    """The home's settings and its chunks as rows (id, text, title, source id, kind, meta, path), in
    id order, as ``Bm25Index._build`` reads them; an error naming the home when it holds none."""
    from sqlalchemy import select

    from lorebase.eval.public_sets import public_settings
    from lorebase.settings import load_settings
    from lorebase.store import Store
    from lorebase.store.models import Chunk, Source

    settings = public_settings(load_settings(), evaldata, 200, home=home)
    store = Store(settings.db_url)
    try:
        with store.session() as s:
            rows = list(s.execute(
                select(Chunk.id, Chunk.text, Source.title, Chunk.source_id, Source.kind, Chunk.meta, Source.path)
                .join(Source, Chunk.source_id == Source.id).order_by(Chunk.id)
            ).all())
    finally:
        store.close()
    if not rows:
        raise SystemExit(f"{home} holds no chunks; build it first (lorebase eval retrieval)")
    return settings, rows
