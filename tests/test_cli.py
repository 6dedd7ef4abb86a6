import subprocess
import sys
from pathlib import Path

from lorebase.cli.main import build_parser, main


def test_help_lists_commands_and_imports_nothing_heavy() -> None:
    code = ("import sys, lorebase.cli.main as m; m.build_parser().format_help(); "
            "heavy = [x for x in ('torch', 'transformers', 'faiss', 'vllm', 'chainlit', 'trl', 'sqlalchemy') if x in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = build_parser().format_help()
    for cmd in ("models", "db", "config"):
        assert cmd in help_text


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("lorebase")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "models" in r.stdout


def test_bad_setting_is_one_clear_error(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOREBASE_RETRIEVAL__TOP_K", "0")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "retrieval.top_k" in err


def test_db_upgrade_creates_the_home(monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOREBASE_HOME", str(tmp_path / "home"))
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "home" / "lorebase.db").is_file()
    assert main(["db", "current"]) == 0
    from alembic.script import ScriptDirectory

    from lorebase.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert capsys.readouterr().out.split()[-2] == head


def test_models_list_reports_missing_generator(monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOREBASE_HOME", str(tmp_path / "home"))
    assert main(["models", "list", "--json"]) == 1
    import json

    rows = {r["role"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["embedder"]["ready"] is True
    assert rows["generator"]["ready"] is False and "models prepare" in rows["generator"]["detail"]
    assert rows["answerability"] == {"role": "answerability", "name": "off", "path": None, "ready": True,
                                     "detail": rows["answerability"]["detail"]}
    assert main(["models", "list"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines[::2]] == [["generator", "MISSING"], ["embedder", "ready"],
                                                      ["whisper", "MISSING"], ["answerability", "ready"]]
    assert all(ln.startswith(" " * 14) and ln[14] != " " for ln in lines[1::2])  # details line up under the names
