"""The transcription checkpoint: finished segments of a recording, appended as they come.

A JSONL file: a header (format version, media hash, the settings that shape the transcript), then
``language``, ``segment`` and finally ``done`` records, each written, flushed and fsynced as it
happens, so a kill loses at most the segment being decoded. A torn last line is cut off when the
file is opened again. Writers hold an exclusive lock (two ingests of one recording would otherwise
both append). Once it holds a ``done`` record the file is the cached transcript.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lorebase.errors import InvalidInput

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class SpeechSegment:
    start: float  # seconds on the recording's own timeline
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "words": [[w.start, w.end, w.text, w.probability] for w in self.words],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SpeechSegment:
        words = tuple(Word(float(a), float(b), str(t), float(p)) for a, b, t, p in d.get("words") or [])
        return cls(float(d["start"]), float(d["end"]), str(d["text"]), words)


@dataclass
class Checkpoint:
    """One recording's checkpoint file (see the module docstring)."""

    path: Path
    header: dict[str, Any]
    segments: list[SpeechSegment] = field(default_factory=list)
    language: str | None = None
    duration: float | None = None  # set by the done record
    _file: IO[str] | None = None

    @property
    def done(self) -> bool:
        return self.duration is not None

    @property
    def resume_at(self) -> float:
        return self.segments[-1].end if self.segments else 0.0

    @classmethod
    def open(cls, path: Path, header: dict[str, Any]) -> Checkpoint:
        """Open for appending under an exclusive lock (two ingests of one recording would
        otherwise both append); what is already there is loaded."""
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise InvalidInput("this recording is being transcribed by another lorebase process; try again later") from None
        ck = cls(path, header, _file=f)
        ck._load()
        return ck

    @classmethod
    def read(cls, path: Path, header: dict[str, Any]) -> Checkpoint | None:
        """What a checkpoint holds, read without taking the lock; None when there is none."""
        try:
            with open(path, encoding="utf-8") as f:
                records, _ = _records(f, header)
        except FileNotFoundError:
            return None
        ck = cls(path, header)
        ck._apply(records)
        return ck

    def _load(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        records, good = _records(self._file, self.header)
        self._file.truncate(good)
        self._file.seek(0, os.SEEK_END)
        if not records:
            self._write({"header": self.header})
        self._apply(records)

    def _apply(self, records: list[dict[str, Any]]) -> None:
        for r in records[1:]:
            if "segment" in r:
                self.segments.append(SpeechSegment.from_json(r["segment"]))
            elif "language" in r:
                self.language = r["language"]
            elif "done" in r:
                self.duration = float(r["done"]["duration"])

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def set_language(self, language: str, probability: float) -> None:
        self.language = language
        self._write({"language": language, "probability": round(probability, 4)})

    def add(self, segment: SpeechSegment) -> None:
        self.segments.append(segment)
        self._write({"segment": segment.to_json()})

    def finish(self, duration: float) -> None:
        self.duration = duration
        self._write({"done": {"duration": duration, "segments": len(self.segments)}})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None


def _records(lines: Iterable[str], header: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The whole, valid records from the start, and their length in bytes. None are kept when the
    first is not ``header`` (an empty file, or one written under another format version)."""
    good = 0
    records: list[dict[str, Any]] = []
    for line in lines:
        if not line.endswith("\n"):
            break
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good += len(line.encode("utf-8"))
    if not records or records[0].get("header") != header:
        return [], 0
    return records, good
