"""deploy/compose.yaml cannot be run here (no Docker engine, no GPU); this keeps it in step with the
code: its settings are real settings, its commands real commands, its paths agree with each other."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from lorebase.cli.main import main
from lorebase.generator_profiles import profile
from lorebase.offline_models import builtin_generator_dir
from lorebase.settings import DEFAULT_GENERATOR, Settings, load_settings
from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"


def _services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def _filled(value: str) -> str:
    """Compose's ${VAR:?message} and ${VAR} placeholders, filled with a stand-in value."""
    return re.sub(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", lambda m: f"test-{m.group(1).lower()}", value)


def _app_services() -> dict[str, Any]:
    return {name: s for name, s in _services().items() if s.get("image") == "lorebase:local"}


def test_every_app_container_gets_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    apps = _app_services()
    assert {"api-1", "api-2", "scheduler-1", "scheduler-2", "models"} <= set(apps)
    for name, service in apps.items():
        env = {k: _filled(str(v)) for k, v in service.get("environment", {}).items()}
        assert all(k.startswith("LOREBASE_") for k in env), name
        # pydantic-settings ignores an unknown top-level variable: check those names here
        assert all(k.removeprefix("LOREBASE_").split("__")[0].lower() in Settings.model_fields for k in env), name
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        settings = load_settings()  # fails on an unknown key or a bad value
        if name != "models":
            assert settings.db_url.startswith("postgresql://lorebase:test-postgres_password@postgres:5432/")
            assert str(settings.adapters_dir) == "/shared/adapters"
        for k in env:
            monkeypatch.delenv(k)


def test_commands_are_lorebase_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for name, service in _app_services().items():
        cmd = service["command"]
        assert cmd[0] == ".venv/bin/lorebase", name
        with pytest.raises(SystemExit) as e:
            main([*cmd[1:], "--help"])
        assert e.value.code == 0, name
    capsys.readouterr()


def test_the_model_server_serves_the_prepared_model_and_sees_the_adapters_where_the_apps_do() -> None:
    services = _services()
    vllm = services["vllm"]
    args = vllm["command"]
    # the folder `lorebase models prepare` makes for the default profile in the data home /data, and
    # the name the apps ask for (the folder's name)
    folder = builtin_generator_dir(load_settings(home="/data"), profile(DEFAULT_GENERATOR))
    assert args[args.index("--model") + 1] == str(folder)
    assert args[args.index("--served-model-name") + 1] == folder.name
    assert "--enable-lora" in args and vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    for name in ("api-1", "api-2", "scheduler-1", "scheduler-2"):
        adapters = services[name]["environment"]["LOREBASE_FINETUNE__ADAPTERS_DIR"]
        assert f"adapters:{adapters}:ro" in vllm["volumes"]
        assert any(v.startswith(f"adapters:{adapters}") for v in services[name]["volumes"]), name
        assert any(v.startswith("models:/data/models") for v in services[name]["volumes"]), name
    homes = [v for n in ("api-1", "api-2", "scheduler-1", "scheduler-2") for v in services[n]["volumes"] if v.endswith(":/data")]
    assert len(set(homes)) == 4, "each container keeps its own data home (its own index)"
