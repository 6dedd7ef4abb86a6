"""Embedder tuning: its data, its gate and the atomic swap of index and embedder, with the real
MiniLM, real FAISS and a real SQLite store. The "worse" embedder is MiniLM with its word
embeddings shuffled: a real model that can no longer tell topics apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from lorebase.finetune.embedder_tuning import (
    GateScores,
    add_hard_negatives,
    judge,
    load_pairs,
    pool_ids,
    score_embedder,
    train_embedder,
    tune,
)
from lorebase.index.bm25 import Bm25Index
from lorebase.index.dense import MANIFEST_NAME, Manifest
from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype
from lorebase.index.search import SearchService
from lorebase.index.sync import IndexSyncer
from lorebase.index.texts import indexed_text
from lorebase.settings import DEFAULT_EMBEDDER, Settings
from lorebase.store import Store
from lorebase.store.models import Chunk, QAPair
from tests.index.conftest import embedder  # noqa: F401  (the session fixture)
from tests.index.corpus import add_source

pytestmark = pytest.mark.slow

# Twelve topics, two chunks each, and one question per chunk in the words of a learner.
TOPICS = {
    "pasta": ("Boil the pasta for nine minutes in plenty of salted water.", "Drain the spaghetti and toss it with the tomato sauce."),
    "bread": ("Knead the dough until it is smooth, then let it rise for an hour.", "Bake the loaf at 220 degrees until the crust is brown."),
    "tides": ("The moon's gravity pulls the oceans and makes the tides.", "Spring tides happen when sun and moon line up."),
    "volcano": ("Magma rises through the crust and erupts as lava.", "Ash clouds from an eruption can ground aircraft."),
    "chess": ("The knight moves in an L shape and can jump over pieces.", "Castling moves the king two squares towards a rook."),
    "guitar": ("Tune the guitar strings to E A D G B E.", "A capo clamps the strings to raise the pitch of every chord."),
    "bees": ("Honey bees dance to tell the hive where flowers are.", "The queen bee lays up to two thousand eggs a day."),
    "rust": ("Iron rusts when oxygen and water reach its surface.", "Paint or zinc plating keeps steel from corroding."),
    "sleep": ("Adults need seven to nine hours of sleep a night.", "Deep sleep is when the body repairs its muscles."),
    "comets": ("A comet's tail always points away from the sun.", "Comets are balls of ice and dust from the outer solar system."),
    "tax": ("Income tax is withheld from each monthly salary payment.", "You can deduct charitable donations from taxable income."),
    "bikes": ("Pump the bicycle tyres to the pressure printed on the sidewall.", "Oil the chain when it starts to squeak."),
}
QUESTIONS = {
    "pasta": ("How long should spaghetti cook?", "What do I do with the noodles after cooking?"),
    "bread": ("How long does the dough need to rise?", "What oven temperature for a loaf?"),
    "tides": ("What causes the sea level to go up and down?", "When are tides strongest?"),
    "volcano": ("How does molten rock come out of a mountain?", "Why can volcanoes stop flights?"),
    "chess": ("How does the horse piece move?", "How do you protect the king with a rook?"),
    "guitar": ("Which notes are the six strings?", "What does a capo do?"),
    "bees": ("How do bees share where to find food?", "How many eggs does the queen lay?"),
    "rust": ("Why does iron go orange?", "How do you stop steel from rusting?"),
    "sleep": ("How many hours should a grown-up sleep?", "When does the body recover during the night?"),
    "comets": ("Which way does a comet's tail point?", "What are comets made of?"),
    "tax": ("When is income tax taken from wages?", "Can donations reduce my tax?"),
    "bikes": ("How hard should bike tyres be pumped?", "What to do about a noisy chain?"),
}
TEST_SOURCES = {"tides", "chess", "bees", "tax"}  # held out: never trained on


def fill(store: Store) -> dict[str, list[int]]:
    ids = {}
    for name, chunks in TOPICS.items():
        ids[name] = add_source(store, f"doc:r:{name}.md", list(chunks), kind="doc", repo="r", path=f"{name}.md", title=name)
    with store.session() as s:
        for name, qs in QUESTIONS.items():
            src = store_source_id(name)
            for q, cid in zip(qs, ids[name], strict=True):
                s.add(QAPair(question=q, answer="see the source [S1]", chunk_ids=[cid], source_ids=[src], kind="doc",
                             method="template", validated=True, split="test" if name in TEST_SOURCES else "train",
                             question_hash=q))
        # Never used: an abstention pair (no chunk) and an unvalidated one.
        s.add(QAPair(question="Who won the 1930 world cup?", answer="I do not know.", chunk_ids=[], source_ids=[store_source_id("pasta")],
                     method="template", validated=True, split="train", question_hash="a"))
        s.add(QAPair(question="Unchecked?", answer="x", chunk_ids=[ids["pasta"][0]], source_ids=[store_source_id("pasta")],
                     method="template", validated=False, split="train", question_hash="b"))
    return ids


def store_source_id(name: str) -> str:
    from lorebase.store.models import source_id_for

    return source_id_for(f"doc:r:{name}.md")


@pytest.fixture(scope="module")
def scrambled(tmp_path_factory: pytest.TempPathFactory, embedder: LorebaseEmbedding) -> Path:  # noqa: F811
    """MiniLM with its word-embedding rows shuffled: loads and embeds like MiniLM, means nothing."""
    import torch
    from sentence_transformers import SentenceTransformer

    out = tmp_path_factory.mktemp("scrambled")
    model = SentenceTransformer(embedder.path, device="cpu", local_files_only=True)
    weights = model[0].auto_model.embeddings.word_embeddings.weight
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weights.copy_(weights[torch.randperm(weights.shape[0], generator=gen)])
    model.save(str(out))
    return out


def as_candidate(path: Path, name: str = "tuned-test") -> LorebaseEmbedding:
    return LorebaseEmbedding(path, model_name=f"{DEFAULT_EMBEDDER}+{name}", dtype=resolve_dtype("auto"), base=DEFAULT_EMBEDDER)


def test_pairs_split_by_source_and_hard_negatives_come_from_other_sources(store: Store) -> None:
    ids = fill(store)
    data = load_pairs(store, max_train=1000, max_held_out=1000)
    assert len(data.train) == 16 and len(data.held_out) == 8  # the abstention and unvalidated pairs are left out
    held_sources = {p.source_id for p in data.held_out}
    assert held_sources == {store_source_id(n) for n in TEST_SOURCES}
    assert not held_sources & {p.source_id for p in data.train}
    assert data.texts[ids["pasta"][0]] == indexed_text("pasta", TOPICS["pasta"][0])

    from_bm25 = add_hard_negatives(data, store, Bm25Index(store, "english"))
    assert 0 < from_bm25 < len(data.train)  # BM25 finds a near miss for most questions, not all
    assert len(data.negatives) == len(data.train)  # the others get a chunk of another source at random
    with store.session() as s:
        source_of = dict(s.execute(select(Chunk.id, Chunk.source_id)).tuples().all())
    for i, neg in data.negatives.items():
        assert source_of[neg] != data.train[i].source_id and neg in data.texts
    # Where BM25 found one, the negative is what it ranks first among the chunks of other sources.
    bm25 = Bm25Index(store, "english")
    found = 0
    for i, neg in data.negatives.items():
        first_other = next((c for c, _ in bm25.search(data.train[i].question, 20) if source_of[c] != data.train[i].source_id), None)
        if first_other is not None:
            assert neg == first_other
            found += 1
    assert found == from_bm25


def test_gate_promotes_only_an_embedder_that_ranks_held_out_chunks_better(
    store: Store, embedder: LorebaseEmbedding, scrambled: Path  # noqa: F811
) -> None:
    fill(store)
    data = load_pairs(store, 1000, 1000)
    pool = pool_ids(store, data.held_out, size=24)
    assert set(pool) >= {p.chunk_id for p in data.held_out} and len(pool) == 24
    from lorebase.finetune.embedder_tuning import chunk_texts

    texts = chunk_texts(store, pool)
    good = score_embedder(embedder, data.held_out, pool, texts)
    bad = score_embedder(as_candidate(scrambled), data.held_out, pool, texts)
    assert good.mrr > bad.mrr + 0.2 and good.recall1 > bad.recall1  # MiniLM knows what a horse piece is
    assert judge(current=bad, candidate=good, min_gain=0.005).promote
    assert not judge(current=good, candidate=bad, min_gain=0.005).promote
    assert not judge(current=good, candidate=good, min_gain=0.005).promote  # no gain, no swap


def test_judge_refuses_a_gain_that_loses_recall() -> None:
    cur = GateScores(pairs=100, pool=1000, mrr=0.50, recall1=0.40, recall10=0.80)
    cand = GateScores(pairs=100, pool=1000, mrr=0.56, recall1=0.50, recall10=0.78)
    v = judge(cur, cand, min_gain=0.005)
    assert not v.promote and "recall@10 fell" in v.reason
    assert judge(cur, GateScores(100, 1000, 0.504, 0.41, 0.80), min_gain=0.005).promote is False
    assert judge(cur, GateScores(100, 1000, 0.52, 0.41, 0.80), min_gain=0.005).promote


def manifest(settings: Settings) -> Manifest:
    return Manifest.read(settings.index_dir / MANIFEST_NAME)


def test_swap_to_another_embedder_is_atomic_and_every_process_follows(
    settings: Settings, store: Store, embedder: LorebaseEmbedding, scrambled: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    ids = fill(store)
    # Process A: the server, with its own embedder object shared by its syncer and search.
    emb_a = LorebaseEmbedding(embedder.path, model_name=DEFAULT_EMBEDDER, dtype=embedder.dtype)
    a = IndexSyncer(settings, store, emb_a, progress=False)
    a.open()
    a.sync()
    search_a = SearchService(settings, store, embedder=emb_a, dense=a.dense)
    # Process B opened the index before the swap.
    emb_b = LorebaseEmbedding(embedder.path, model_name=DEFAULT_EMBEDDER, dtype=embedder.dtype)
    b = IndexSyncer(settings, store, emb_b, progress=False)
    b.open()
    search_b = SearchService(settings, store, embedder=emb_b, dense=b.dense)
    before = manifest(settings)
    assert search_b.retrieve("How does the horse piece move?", k=1, mode="dense")[0].chunk_id == ids["chess"][0]

    # A swap that dies half-way changes nothing: same manifest, same embedder, no staging left.
    broken = as_candidate(scrambled, "tuned-broken")
    calls = {"n": 0}
    real_embed = broken.embed

    def dying(texts: list[str]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("killed mid-way")
        return real_embed(texts)

    monkeypatch.setattr(a, "embed", lambda texts, bar=None, embedder=None: dying(texts) if embedder is broken else IndexSyncer.embed(a, texts, bar, embedder))
    monkeypatch.setattr("lorebase.index.sync.ROUND", 10)  # several rounds, so it dies after the first
    with pytest.raises(RuntimeError, match="killed mid-way"):
        a.rebuild(broken)
    assert manifest(settings) == before
    assert emb_a.model_name == DEFAULT_EMBEDDER and a.dense.embedder_name == DEFAULT_EMBEDDER
    assert not list(settings.index_dir.glob(".rebuild-*"))
    monkeypatch.undo()

    # The real swap: A re-embeds everything with the candidate and installs it.
    cand = as_candidate(scrambled)
    result = a.rebuild(cand)
    assert result.total == sum(len(v) for v in ids.values())
    m = manifest(settings)
    assert (m.embedder, m.embedder_path, m.embedder_base) == (cand.model_name, str(scrambled), DEFAULT_EMBEDDER)
    assert emb_a.model_name == cand.model_name and emb_a.path == str(scrambled)
    stored = a.dense.store.vectors(np.asarray(ids["chess"], dtype=np.int64))
    # bf16 (chosen on CPUs that have it) pads the index's larger batches differently: a few 1e-4 apart
    atol = 1e-4 if cand.dtype == "float32" else 5e-3
    texts = [indexed_text("chess", t) for t in TOPICS["chess"]]
    assert np.allclose(stored, cand.embed(texts), atol=atol)
    assert not np.allclose(stored, embedder.embed(texts), atol=atol)  # the tolerance still tells the two apart

    # B follows on its next search: its embedder becomes the candidate before it embeds the query.
    gen = b.dense.generation
    hits_b = search_b.retrieve("How does the horse piece move?", k=3, mode="dense")
    assert emb_b.model_name == cand.model_name and b.dense.generation == gen + 1
    assert [h.chunk_id for h in hits_b] == [h.chunk_id for h in search_a.retrieve("How does the horse piece move?", k=3, mode="dense")]
    # A process started now picks the tuned embedder from the manifest.
    fresh = LorebaseEmbedding.from_settings(settings)
    assert (fresh.model_name, fresh.path, fresh.base) == (cand.model_name, str(scrambled), DEFAULT_EMBEDDER)

    # Going back to the configured embedder is the same swap; B follows again.
    a.rebuild(LorebaseEmbedding.configured(settings))
    assert manifest(settings).embedder == DEFAULT_EMBEDDER and manifest(settings).embedder_base is None
    assert search_b.retrieve("How does the horse piece move?", k=1, mode="dense")[0].chunk_id == ids["chess"][0]
    assert emb_b.model_name == DEFAULT_EMBEDDER
    assert LorebaseEmbedding.from_settings(settings).model_name == DEFAULT_EMBEDDER


def test_a_changed_embedder_setting_is_not_silently_swapped_back(
    settings: Settings, store: Store, embedder: LorebaseEmbedding, scrambled: Path  # noqa: F811
) -> None:
    from lorebase.errors import StoreError

    fill(store)
    a = IndexSyncer(settings, store, LorebaseEmbedding(embedder.path, model_name=DEFAULT_EMBEDDER, dtype=embedder.dtype), progress=False)
    a.open()
    a.sync()
    a.rebuild(as_candidate(scrambled))
    # The user now configures another embedder: the tuned index was not made from it.
    other = settings.model_copy(update={"models": settings.models.model_copy(update={"embedder": str(scrambled)})})
    emb = LorebaseEmbedding.from_settings(other)
    assert emb.model_name == str(scrambled) and emb.base is None
    with pytest.raises(StoreError, match="index rebuild"):
        IndexSyncer(other, store, emb, progress=False).dense.load()


def test_tuning_trains_gates_and_records_a_candidate(settings: Settings, store: Store, embedder: LorebaseEmbedding) -> None:  # noqa: F811
    fill(store)
    s = settings.model_copy(update={"embedder_tuning": settings.embedder_tuning.model_copy(
        update={"min_pairs": 8, "batch_size": 8, "epochs": 1.0, "max_seq_length": 64, "gate_pool": 24})})
    syncer = IndexSyncer(s, store, LorebaseEmbedding(embedder.path, model_name=DEFAULT_EMBEDDER, dtype=embedder.dtype), progress=False)
    syncer.open()
    syncer.sync()
    result = tune(s, store, syncer, Bm25Index(store, "english"), promote=False)
    assert (result.train_pairs, result.held_out_pairs) == (16, 8) and result.hard_negatives > 0
    assert not result.promoted and manifest(s).embedder == DEFAULT_EMBEDDER  # asked not to promote
    folder = Path(result.path)
    assert (folder / "lorebase-tuning.json").is_file() and (folder / "config.json").is_file()
    assert not list(folder.parent.glob(".*.partial"))
    verdict = result.verdict
    assert set(verdict) == {"promote", "reason", "current", "candidate"} and verdict["current"]["pairs"] == 8
    # The saved model loads and embeds like any sentence-transformers folder.
    tuned = LorebaseEmbedding(folder, model_name="t", dtype="float32")
    assert tuned.embed(["hello"]).shape == (1, embedder.dim)

    too_few = s.model_copy(update={"embedder_tuning": s.embedder_tuning.model_copy(update={"min_pairs": 100})})
    from lorebase.errors import InvalidInput

    with pytest.raises(InvalidInput, match="at least 100"):
        train_embedder(Path(embedder.path), load_pairs(store, 1000, 1000), folder.parent / "never", too_few)


@pytest.fixture(scope="module")
def without_dropout(tmp_path_factory: pytest.TempPathFactory, embedder: LorebaseEmbedding) -> Path:  # noqa: F811
    """MiniLM with dropout off, so two trainings from one seed differ only by how a batch is computed."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path_factory.mktemp("no-dropout")
    model = SentenceTransformer(embedder.path, device="cpu", local_files_only=True)
    config = model[0].auto_model.config
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    model.save(str(out))
    return out


def test_mini_batches_bound_memory_without_changing_what_is_learnt(
    settings: Settings, store: Store, without_dropout: Path, tmp_path: Path
) -> None:
    """mini_batch_size slices each step (GradCache): the same batches, negatives and gradients as
    the whole batch at once, so the tuned model is the same; a smaller batch_size would not be."""
    fill(store)
    data = load_pairs(store, 1000, 1000)
    add_hard_negatives(data, store, Bm25Index(store, "english"))

    def trained(name: str, **cfg: float) -> LorebaseEmbedding:
        s = settings.model_copy(update={"embedder_tuning": settings.embedder_tuning.model_copy(
            update={"min_pairs": 8, "epochs": 1.0, "max_seq_length": 64, "learning_rate": 1e-3, "warmup_ratio": 0.0, **cfg})})
        return LorebaseEmbedding(train_embedder(without_dropout, data, tmp_path / name, s), model_name=name, dtype="float32")

    questions = [p.question for p in data.train + data.held_out]
    base = LorebaseEmbedding(without_dropout, model_name="base", dtype="float32").embed(questions)
    whole = trained("whole", batch_size=8, mini_batch_size=0).embed(questions)
    sliced = trained("sliced", batch_size=8, mini_batch_size=3).embed(questions)
    smaller = trained("smaller", batch_size=3, mini_batch_size=0).embed(questions)
    learnt = float(np.linalg.norm(whole - base))
    assert learnt > 0.5  # the two steps moved the model
    assert float(np.linalg.norm(sliced - whole)) < 0.05 * learnt
    assert float(np.linalg.norm(smaller - whole)) > 0.2 * learnt  # the comparison can tell batches apart


def test_a_tuned_embedder_put_in_use_embeds_long_chunks_as_the_setting_says(
    settings: Settings, store: Store, embedder: LorebaseEmbedding  # noqa: F811
) -> None:
    import json
    import shutil

    from lorebase.finetune.embedder_tuning import META_FILE, embedders_dir, use_tuned

    pooled = settings.model_copy(update={"index": settings.index.model_copy(update={"embed_long_texts": "pool"})})
    body = "\n".join(f"def parse_header_{i}(line): return line.split(':', 1)" for i in range(25)) + "\n" + \
        "\n".join(f"def send_email_{i}(to, subject): smtp.sendmail(to, subject)" for i in range(25))
    [cid] = add_source(store, "code:r:mail.py", [body], kind="code", repo="r", path="mail.py", title="mail.py")
    syncer = IndexSyncer(pooled, store, LorebaseEmbedding.from_settings(pooled), progress=False)
    syncer.open()
    syncer.sync()
    # A tuned embedder in the data home (the base model's own weights, so the expected vectors are known).
    folder = embedders_dir(pooled) / "tuned-copy"
    shutil.copytree(embedder.path, folder)
    (folder / META_FILE).write_text(json.dumps({"name": "tuned-copy", "base": DEFAULT_EMBEDDER}), encoding="utf-8")
    assert use_tuned(pooled, syncer, "tuned-copy") == 1
    stored = syncer.dense.store.vectors(np.asarray([cid], dtype=np.int64))[0]
    text = [indexed_text("mail.py", body)]
    whole = LorebaseEmbedding(folder, model_name="x", dtype=embedder.dtype, long_texts="pool").embed(text)[0]
    start = LorebaseEmbedding(folder, model_name="x", dtype=embedder.dtype).embed(text)[0]
    assert float(stored @ whole) > 0.999 and float(stored @ start) < 0.99
