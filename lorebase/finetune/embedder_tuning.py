"""Tuning the embedder on the corpus's own traceable pairs, judged on sources it never saw.

Data: the validated QA pairs that point at one chunk (question -> the chunk it was made from);
abstention pairs have no chunk and are left out. A pair's split follows its source
(lorebase.finetune.splits), so the train pairs and the held-out (test) pairs come from
different sources.

Training (sentence-transformers): MultipleNegativesRankingLoss over (question, its chunk, a hard
negative): every other chunk in the batch is a negative too (in-batch negatives), and the hard
negative is the chunk of another source that BM25 ranks highest for the question, the
near-miss a lexical retriever would have confused it with.

Gate: the current and the candidate embedder each rank the held-out chunks among a fixed pool
(the held-out pairs' chunks plus a seeded sample of the store's other chunks); the candidate is
promoted only when its MRR@10 beats the current one's by more than ``gate_min_gain`` and its
recall@10 does not fall. Promotion re-embeds every chunk into a new index and swaps it in with
one rename (IndexSyncer.rebuild): searches go on with the old index until then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lorebase.errors import InvalidInput
from lorebase.index.texts import indexed_text
from lorebase.store.models import Chunk, QAPair, Source

if TYPE_CHECKING:
    from lorebase.index.bm25 import Bm25Index
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.index.sync import IndexSyncer
    from lorebase.settings import Settings
    from lorebase.store import Store

log = logging.getLogger(__name__)

META_FILE = "lorebase-tuning.json"


@dataclass(frozen=True)
class Pair:
    question: str
    chunk_id: int
    source_id: str


@dataclass
class TuningData:
    train: list[Pair]
    held_out: list[Pair]
    texts: dict[int, str]  # chunk id -> the text the index embeds for it
    negatives: dict[int, int] = field(default_factory=dict)  # index into train -> hard negative chunk id

    @property
    def data_hash(self) -> str:
        h = hashlib.sha256()
        for i, p in enumerate(self.train):
            h.update(f"{p.question}\x00{p.chunk_id}\x00{self.negatives.get(i, '')}\n".encode())
        return h.hexdigest()[:16]


def load_pairs(store: Store, max_train: int, max_held_out: int, seed: int = 0) -> TuningData:
    """Validated, active pairs with exactly one chunk: train split to learn, test split to judge."""
    with store.session() as s:
        rows = s.execute(
            select(QAPair.question, QAPair.chunk_ids, QAPair.source_ids, QAPair.split)
            .where(QAPair.validated.is_(True), QAPair.retired_at.is_(None), QAPair.split.in_(("train", "test")))
            .order_by(QAPair.id)
        ).all()
    by_split: dict[str, list[Pair]] = {"train": [], "test": []}
    for question, chunk_ids, source_ids, split in rows:
        if len(chunk_ids or []) != 1 or not source_ids:
            continue  # abstention pairs point at no chunk; a pair over several chunks has no single positive
        by_split[split].append(Pair(question, int(chunk_ids[0]), str(source_ids[0])))
    rng = random.Random(seed)
    for split, cap in (("train", max_train), ("test", max_held_out)):
        if len(by_split[split]) > cap:
            by_split[split] = sorted(rng.sample(by_split[split], cap), key=lambda p: p.chunk_id)
    wanted = {p.chunk_id for ps in by_split.values() for p in ps}
    texts = chunk_texts(store, wanted)
    train = [p for p in by_split["train"] if p.chunk_id in texts]
    held = [p for p in by_split["test"] if p.chunk_id in texts]
    return TuningData(train, held, texts)


def chunk_texts(store: Store, ids: set[int] | list[int]) -> dict[int, str]:
    """The indexed text (title + chunk) of each chunk id still in the store."""
    out: dict[int, str] = {}
    ids = sorted(ids)
    with store.session() as s:
        for i in range(0, len(ids), 900):
            for cid, text, title in s.execute(
                select(Chunk.id, Chunk.text, Source.title).join(Source, Chunk.source_id == Source.id).where(Chunk.id.in_(ids[i : i + 900]))
            ):
                out[cid] = indexed_text(title, text)
    return out


def add_hard_negatives(data: TuningData, store: Store, bm25: Bm25Index, depth: int = 20, seed: int = 0) -> int:
    """For each train pair, the chunk of another source that BM25 ranks highest for its question;
    where BM25 finds none (no shared word outside the pair's own source), a random chunk of
    another source, so every pair has a negative. Returns how many came from BM25."""
    with store.session() as s:
        source_of = dict(s.execute(select(Chunk.id, Chunk.source_id)).tuples().all())
    negatives: dict[int, int] = {}
    for i, p in enumerate(data.train):
        for cid, _ in bm25.search(p.question, depth):
            if cid != p.chunk_id and source_of.get(cid) not in (None, p.source_id):
                negatives[i] = cid
                break
    from_bm25 = len(negatives)
    rng = random.Random(seed)
    pool = sorted(source_of)
    if len(set(source_of.values())) > 1:  # else no chunk of another source exists
        for i, p in enumerate(data.train):
            while i not in negatives:
                cid = rng.choice(pool)
                if source_of[cid] != p.source_id:
                    negatives[i] = cid
    data.texts.update(chunk_texts(store, {c for c in negatives.values() if c not in data.texts}))
    data.negatives = {i: c for i, c in negatives.items() if c in data.texts}
    return from_bm25


# --- the gate --------------------------------------------------------------------------------------


@dataclass
class GateScores:
    pairs: int
    pool: int
    mrr: float
    recall1: float
    recall10: float


def pool_ids(store: Store, held_out: list[Pair], size: int, seed: int = 0) -> list[int]:
    """The held-out chunks plus a seeded sample of other chunks, ``size`` in all (at least the held-out ones)."""
    gold = sorted({p.chunk_id for p in held_out})
    with store.session() as s:
        others = [cid for (cid,) in s.execute(select(Chunk.id).order_by(Chunk.id)) if cid not in set(gold)]
    rng = random.Random(seed)
    extra = rng.sample(others, min(len(others), max(0, size - len(gold))))
    return sorted(gold + extra)


def score_embedder(embedder: LorebaseEmbedding, held_out: list[Pair], pool: list[int], texts: dict[int, str]) -> GateScores:
    """MRR@10, recall@1 and recall@10 of each held-out question's chunk among ``pool``."""
    if not held_out:
        raise InvalidInput("no held-out pairs to judge an embedder on: generate QA pairs first (`lorebase qa generate`)")
    docs = embedder.embed([texts[c] for c in pool])
    queries = embedder.embed([p.question for p in held_out])
    position = {c: i for i, c in enumerate(pool)}
    sims = queries @ docs.T
    rr = r1 = r10 = 0.0
    for qi, p in enumerate(held_out):
        gold = sims[qi, position[p.chunk_id]]
        rank = int((sims[qi] > gold).sum()) + 1  # ties count in the gold's favour
        rr += 1.0 / rank if rank <= 10 else 0.0
        r1 += rank == 1
        r10 += rank <= 10
    n = len(held_out)
    return GateScores(n, len(pool), round(rr / n, 4), round(r1 / n, 4), round(r10 / n, 4))


@dataclass
class GateVerdict:
    promote: bool
    reason: str
    current: GateScores
    candidate: GateScores

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, "current": asdict(self.current), "candidate": asdict(self.candidate)}


def judge(current: GateScores, candidate: GateScores, min_gain: float) -> GateVerdict:
    """Promote only on a real gain in MRR@10 with no loss in recall@10."""
    gain = candidate.mrr - current.mrr
    if gain <= min_gain:
        return GateVerdict(False, f"MRR@10 {candidate.mrr:.4f} vs {current.mrr:.4f}: gain {gain:+.4f} is not above {min_gain}",
                           current, candidate)
    if candidate.recall10 < current.recall10:
        return GateVerdict(False, f"recall@10 fell from {current.recall10:.4f} to {candidate.recall10:.4f}", current, candidate)
    return GateVerdict(True, f"MRR@10 {current.mrr:.4f} -> {candidate.mrr:.4f} ({gain:+.4f}), recall@10 "
                             f"{current.recall10:.4f} -> {candidate.recall10:.4f}", current, candidate)


# --- training --------------------------------------------------------------------------------------


def _LogLoss() -> Any:  # noqa: N802 - builds the callback class lazily (transformers is a heavy import)
    from transformers import TrainerCallback

    class LogLoss(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                log.info("embedder tuning: step %d/%d, loss %.4f", state.global_step, state.max_steps, logs["loss"])

    return LogLoss()


def train_embedder(base_path: Path, data: TuningData, out_dir: Path, settings: Settings) -> Path:
    """Fine-tune the model in ``base_path`` on ``data.train`` and save it to ``out_dir`` (written
    beside it first, then renamed, so a folder that exists is whole)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import PrinterCallback, ProgressCallback

    cfg = settings.embedder_tuning
    if len(data.train) < cfg.min_pairs:
        raise InvalidInput(f"{len(data.train)} training pairs; embedder tuning needs at least {cfg.min_pairs} "
                           "(embedder_tuning.min_pairs): generate more QA pairs first")
    torch.manual_seed(cfg.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(base_path), device=device, local_files_only=True)
    model.max_seq_length = min(model.max_seq_length or cfg.max_seq_length, cfg.max_seq_length)
    columns: dict[str, list[str]] = {"anchor": [], "positive": []}
    with_negatives = len(data.negatives) == len(data.train)
    if with_negatives:
        columns["negative"] = []
    for i, p in enumerate(data.train):
        columns["anchor"].append(p.question)
        columns["positive"].append(data.texts[p.chunk_id])
        if with_negatives:
            columns["negative"].append(data.texts[data.negatives[i]])
    if not with_negatives and data.negatives:
        log.info("%d of %d pairs have no hard negative: training with in-batch negatives only", len(data.train) - len(data.negatives), len(data.train))
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(partial / "checkpoints"),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps (transformers 5)
        batch_sampler=BatchSamplers.NO_DUPLICATES,  # the same chunk twice in a batch would be its own negative
        save_strategy="no",
        logging_steps=10,
        report_to=[],
        seed=cfg.seed,
        use_cpu=device == "cpu",
        bf16=False,
        fp16=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    # A batch's activations for every text at once dominate memory (about 9 GB at 32 x 256 tokens);
    # GradCache computes the same loss and gradients a slice at a time.
    loss = (CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch_size)
            if 0 < cfg.mini_batch_size < cfg.batch_size else MultipleNegativesRankingLoss(model))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns), loss=loss)
    # The trainer prints its logs to stdout; ours go to the log (stdout may be a --json answer).
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_LogLoss())
    trainer.train()
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    model.save(str(partial))
    partial.rename(out_dir)
    return out_dir


# --- the whole job ---------------------------------------------------------------------------------


@dataclass
class TuningResult:
    name: str
    path: str
    train_pairs: int
    hard_negatives: int  # pairs whose negative BM25 found (the others got a random chunk of another source)
    held_out_pairs: int
    train_seconds: float
    verdict: dict[str, Any]
    promoted: bool
    reindexed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def embedders_dir(settings: Settings) -> Path:
    return settings.home / "embedders"


def tune(settings: Settings, store: Store, syncer: IndexSyncer, bm25: Bm25Index, *, promote: bool = True) -> TuningResult:
    """Train a candidate from the embedder in use, gate it against that embedder on held-out pairs,
    and, when it passes and ``promote``, re-embed everything with it and swap the index."""
    from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype

    cfg = settings.embedder_tuning
    current = syncer.embedder
    data = load_pairs(store, cfg.max_pairs, cfg.gate_max_pairs, cfg.seed)
    if not data.held_out:
        raise InvalidInput("no held-out (test-split) pairs to judge a tuned embedder on: generate QA pairs first")
    from_bm25 = add_hard_negatives(data, store, bm25, seed=cfg.seed) if cfg.hard_negatives else 0
    name = "tuned-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = embedders_dir(settings) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    train_embedder(Path(current.path), data, out, settings)
    seconds = round(time.monotonic() - t0, 1)
    base = current.base or settings.models.embedder
    candidate = LorebaseEmbedding(out, model_name=f"{base}+{name}", dtype=resolve_dtype(settings.index.embed_dtype),
                                  embed_batch_size=settings.index.embed_batch_size, base=base,
                                  long_texts=settings.index.embed_long_texts)
    pool = pool_ids(store, data.held_out, cfg.gate_pool, cfg.seed)
    texts = {**data.texts, **chunk_texts(store, [c for c in pool if c not in data.texts])}
    # Each scoring embeds the whole pool: minutes on a small CPU, so say what is going on.
    log.info("embedder gate: %d held-out pairs among %d chunks, current embedder", len(data.held_out), len(pool))
    before = score_embedder(current, data.held_out, pool, texts)
    log.info("embedder gate: current MRR@10 %.4f; now the candidate", before.mrr)
    verdict = judge(before, score_embedder(candidate, data.held_out, pool, texts), cfg.gate_min_gain)
    result = TuningResult(name, str(out), len(data.train), from_bm25, len(data.held_out), seconds,
                          verdict.as_dict(), promoted=False)
    if verdict.promote and promote:
        log.info("embedder %s passed the gate (%s): re-embedding every chunk", name, verdict.reason)
        result.reindexed = syncer.rebuild(candidate).total
        result.promoted = True
    save_meta(out, result, base=base, tuned_from=current.model_name, data_hash=data.data_hash, settings=cfg.model_dump())
    log.info("embedder %s: %s (%s)", name, "promoted" if result.promoted else "not promoted", verdict.reason)
    return result


def save_meta(folder: Path, result: TuningResult, **extra: Any) -> None:
    """What a tuning recorded, next to its model: ``list_tuned``, ``use_tuned`` and eval reports read it."""
    meta = {**result.as_dict(), **extra, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def list_tuned(settings: Settings) -> list[dict[str, Any]]:
    """Every tuned embedder in the data home with what its tuning recorded, oldest first."""
    out = []
    for meta in sorted(embedders_dir(settings).glob(f"*/{META_FILE}")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):  # a damaged file is not a tuning
            out.append(data)
    return out


def use_tuned(settings: Settings, syncer: IndexSyncer, name: str) -> int:
    """Re-embed with a tuned embedder from the data home (or back with ``configured``) and swap."""
    from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype

    if name == "configured":
        return syncer.rebuild(LorebaseEmbedding.configured(settings)).total
    folder = embedders_dir(settings) / name
    if "/" in name or name.startswith(".") or not (folder / META_FILE).is_file():
        known = ", ".join(m["name"] for m in list_tuned(settings)) or "none"
        raise InvalidInput(f"no tuned embedder {name!r} in {embedders_dir(settings)} (known: {known})")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if meta["base"] != settings.models.embedder:
        raise InvalidInput(f"{name} was tuned from {meta['base']!r}, but the configured embedder is {settings.models.embedder!r}")
    emb = LorebaseEmbedding(folder, model_name=f"{meta['base']}+{name}", dtype=resolve_dtype(settings.index.embed_dtype),
                            embed_batch_size=settings.index.embed_batch_size, base=meta["base"],
                            long_texts=settings.index.embed_long_texts)
    return syncer.rebuild(emb).total
