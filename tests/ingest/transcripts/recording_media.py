"""Real recordings for tests, made offline: espeak-ng speaks known sentences, ffmpeg wraps them in
video containers. Debian packages: espeak-ng, ffmpeg."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

HASH_TABLES = [
    "Today we talk about hash tables.",
    "A hash function maps each key to a bucket.",
    "Collisions are resolved by chaining.",
    "The average lookup takes constant time.",
]


def need_tools() -> None:
    missing = [t for t in ("espeak-ng", "ffmpeg") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (apt-get install -y espeak-ng ffmpeg)")


def speak(sentences: list[str], out: Path, gap_s: float = 0.7) -> list[tuple[float, float, str]]:
    """Speak each sentence with espeak-ng, joined by ``gap_s`` of silence, into one WAV. Returns
    (start, end, sentence) as heard in the file: the ground truth for timestamps."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pieces: list[bytes] = []
    times: list[tuple[float, float, str]] = []
    rate = 22050
    t = 0.0
    for i, sentence in enumerate(sentences):
        part = out.with_name(f".{out.stem}-{i}.wav")
        subprocess.run(["espeak-ng", "-v", "en", "-w", str(part), sentence], check=True)
        with wave.open(str(part), "rb") as w:
            rate = w.getframerate()
            frames = w.readframes(w.getnframes())
            seconds = w.getnframes() / rate
        part.unlink()
        if i:
            gap = int(gap_s * rate)
            pieces.append(b"\x00\x00" * gap)
            t += gap / rate
        pieces.append(frames)
        times.append((t, t + seconds, sentence))
        t += seconds
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(pieces))
    return times


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def wrap_video(wav: Path, out: Path) -> Path:
    """The WAV as the audio track of a small video (.mp4: H.264 + AAC, .webm: VP8 + Opus)."""
    codecs = {".mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
              ".webm": ["-c:v", "libvpx", "-b:v", "50k", "-c:a", "libopus"]}[out.suffix]
    duration = f"{wav_seconds(wav) + 0.2:.2f}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=navy:s=64x64:r=10", "-i", str(wav),
         "-t", duration, *codecs, "--", str(out)],
        check=True,
    )
    return out


def video_without_audio(out: Path, seconds: float = 2.0) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=green:s=64x64:r=10", "-t", str(seconds),
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "--", str(out)],
        check=True,
    )
    return out


def room_tone(out: Path, seconds: float = 6.0, rate: int = 16000) -> Path:
    """Silence as a real room has it: faint noise, no speech."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(int(seconds * rate)) * 60).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out


def wav_with_unknown_codec(out: Path) -> Path:
    """A well-formed RIFF/WAVE file whose format tag (0x3344) names no codec FFmpeg knows."""
    data = b"\x00\x01" * 8000
    fmt = struct.pack("<HHIIHH", 0x3344, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    out.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return out


class CountingModel:
    """The real faster-whisper model, with a record of each call's audio length (in samples)."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.calls: list[int] = []

    def transcribe(self, audio: np.ndarray, **kwargs: object) -> object:
        self.calls.append(len(audio))
        return self.model.transcribe(audio, **kwargs)  # type: ignore[attr-defined]
