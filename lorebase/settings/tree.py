"""The tree itself: every section under one ``Settings``, read from defaults, YAML and the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lorebase.errors import SettingsError
from lorebase.settings.generation import AnswerSettings, GenerationSettings
from lorebase.settings.ingest import GitHubSettings, IngestSettings, TranscribeSettings
from lorebase.settings.models import ModelSettings
from lorebase.settings.retrieval import IndexSettings, RetrievalSettings
from lorebase.settings.scheduler import SchedulerSettings
from lorebase.settings.server import CpuSettings, ServerSettings, UISettings
from lorebase.settings.tuning import EmbedderTuningSettings, EvalSettings, FinetuneSettings, QASettings


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
    transcribe: TranscribeSettings = Field(default_factory=TranscribeSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    cpu: CpuSettings = Field(default_factory=CpuSettings)
    ui: UISettings = Field(default_factory=UISettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    qa: QASettings = Field(default_factory=QASettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    embedder_tuning: EmbedderTuningSettings = Field(default_factory=EmbedderTuningSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

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
        d = self.finetune.adapters_dir
        return d.expanduser().resolve() if d is not None else self.home / "adapters"

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
