"""A LoRA adapter merged into its base weights: a plain model folder that serves at the base model's
speed, with no LoRA work per token (on CPU, vLLM's LoRA path costs most of its throughput).

Merged folders live in the data home, ``models/merged/<adapter>``, written atomically (a
``.partial`` folder renamed into place) and marked with what they were made from, so a changed
adapter or base is merged anew. Only the promoted adapter and the one before it (for rollback) are
kept; :func:`prune_merged` removes the rest.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lorebase.errors import ModelNotAvailable
from lorebase.settings import Settings

log = logging.getLogger(__name__)

MARK = "lorebase-merged.json"


def merged_root(settings: Settings) -> Path:
    return settings.models_dir / "merged"


def merged_dir(settings: Settings, adapter_name: str) -> Path:
    return merged_root(settings) / adapter_name


def _origin(base_dir: Path, adapter_dir: Path) -> dict[str, object]:
    """What a merged folder was made from; a different adapter or base (a retrained adapter written
    over the same folder included) means it must be made again."""
    files = [adapter_dir / "adapter_model.safetensors", adapter_dir / "adapter_config.json", base_dir / "config.json"]
    return {"base": str(base_dir.resolve()), "adapter": str(adapter_dir.resolve()),
            "stamps": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]}


def is_current(out: Path, base_dir: Path, adapter_dir: Path) -> bool:
    try:
        return json.loads((out / MARK).read_text()) == _origin(base_dir, adapter_dir)
    except (OSError, ValueError):
        return False


@contextmanager
def _merging(root: Path) -> Iterator[None]:
    """One merge at a time per data home, across processes (`adapters promote` and the server)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".merge.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def merge_adapter(base_dir: Path, adapter_dir: Path, out: Path) -> Path:
    """Merge the LoRA adapter in ``adapter_dir`` into the model in ``base_dir`` (peft's
    ``merge_and_unload``) and save a model folder with the base's tokenizer at ``out``. Kept in the
    base's stored precision, so the serving dtype (``generation.vllm_dtype``) applies to it as to the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorebase.offline_models import _add_top_level_rope_theta

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelNotAvailable(f"no LoRA adapter in {adapter_dir} (adapter_config.json is missing)")
    with _merging(out.parent):
        if is_current(out, base_dir, adapter_dir):
            return out  # made by another process while we waited
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with torch.inference_mode():
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
            merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)
        _add_top_level_rope_theta(tmp / "config.json")
        (tmp / MARK).write_text(json.dumps(_origin(base_dir, adapter_dir)))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


def ensure_merged(settings: Settings, base_dir: Path, adapter_name: str, adapter_dir: Path) -> Path:
    """The merged folder of this adapter, made now when missing or out of date."""
    out = merged_dir(settings, adapter_name)
    if not is_current(out, base_dir, adapter_dir):
        log.info("merging adapter %s into %s (%s)", adapter_name, base_dir.name, out)
        merge_adapter(base_dir, adapter_dir, out)
    return out


def prune_merged(settings: Settings, keep: set[str]) -> list[str]:
    """Remove merged folders of adapters no longer promoted nor next in line for rollback."""
    root = merged_root(settings)
    removed = []
    if root.is_dir():
        with _merging(root):
            for folder in root.iterdir():
                name = folder.name.removesuffix(".partial")
                if folder.is_dir() and name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder.name)
    return removed
