"""Shared fixtures: an isolated settings tree and store per test, and a tiny offline Llama."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from tests.pg_server import PostgresServer, PostgresUnavailable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

REPO_ROOT = Path(__file__).resolve().parent.parent
# Read once here: _isolated_env clears LOREBASE_* variables before every test.
TEST_DATABASE = os.environ.get("LOREBASE_TEST_DATABASE", "sqlite")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own LOREBASE_* variables or lorebase.yaml."""
    for k in list(os.environ):
        if k.startswith("LOREBASE_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the real PostgreSQL server carries the `postgres` marker (-m "not postgres" skips them)."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the session (tests/pg_server.py). Skipped where PostgreSQL
    is not installed, unless LOREBASE_TEST_POSTGRES=require (as `make test` sets): then it fails."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as e:
        if os.environ.get("LOREBASE_TEST_POSTGRES") == "require":
            pytest.fail(str(e))
        pytest.skip(str(e))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


# The two stores lorebase supports; tests that take `db_url` run on each.
DATABASES = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'lorebase.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """A data home per test. With LOREBASE_TEST_DATABASE=postgres every test that takes this fixture
    runs on a new PostgreSQL database instead of SQLite (a wider check than the `db_url` tests)."""
    url = request.getfixturevalue("postgres_url") if TEST_DATABASE == "postgres" else None
    s = load_settings(home=tmp_path / "home", database_url=url)
    s.ensure_home()
    return s


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    st = Store(settings.db_url)
    yield st
    st.close()


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny_llama(out: Path) -> Path:
    """A random 2-layer Llama with a BPE tokenizer trained here: offline, seconds, loads everywhere."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "def answer(question): return the cited sources [S1] [S2]",
        "The lecture explains gradient descent at 03:15 and backpropagation later.",
        "Fix the parser crash when a file is empty (#12). Closes the issue.",
    ] * 20
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    fast.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,  # vLLM's CPU attention supports head sizes from 32 up, not 64/4=16
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta")
    if theta is not None:
        cfg.setdefault("rope_theta", theta)
        (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
