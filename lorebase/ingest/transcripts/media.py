"""Recordings as audio: which files are media, their content hash, and their sound as 16 kHz mono.

Decoding goes through PyAV (FFmpeg bundled in its wheel), imported inside functions so that
`lorebase --help` stays instant. :class:`AudioStream` reads forward only and keeps just the
samples of the window asked for, so a two-hour lecture never sits decoded in memory at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lorebase.errors import InvalidInput

SAMPLE_RATE = 16_000  # what Whisper expects
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".flac", ".ogg")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov")
# When one lecture exists as several recordings, the first of these is transcribed.
MEDIA_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES


def is_media_file(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES


def media_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in blocks (recordings can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _one_line(e: BaseException) -> str:
    # FFmpeg errors carry the file name in str(e); the reason alone is in strerror.
    text = (getattr(e, "strerror", None) or str(e)).strip().splitlines()
    return text[0] if text else type(e).__name__


class AudioStream:
    """The first audio track of a file, decoded forward only into 16 kHz mono samples.

    ``read(start, count)`` returns float32 samples ``[start, start + count)``; samples before
    ``start`` are dropped for good, so at most one window plus one decoded frame is held.
    Raises InvalidInput (one line) for a file with no audio track, an unknown container, or a
    codec that cannot be decoded."""

    def __init__(self, path: Path) -> None:
        import av

        self.path = path
        try:
            self._container: Any = av.open(str(path), mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise InvalidInput(f"not a readable audio or video file ({_one_line(e)})") from None
        if not self._container.streams.audio:
            self._container.close()
            raise InvalidInput("no audio track")
        stream = self._container.streams.audio[0]
        codec = stream.codec_context
        if codec is None or codec.name in (None, "", "none"):
            self._container.close()
            raise InvalidInput("unsupported audio codec: no decoder for it in this FFmpeg build")
        self.codec: str = codec.name
        self.duration: float | None = _duration(self._container, stream)
        self._frames = self._decode(stream)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._chunks: list[np.ndarray] = []  # int16 samples from self._first on
        self._first = 0  # index of the first sample held
        self._held = 0  # samples held
        self.exhausted = False
        self.bad_frames = 0
        self.peak_held = 0  # the most samples held at once (memory check in tests)

    def _decode(self, stream: Any) -> Iterator[Any]:
        import av

        packets = iter(self._container.demux(stream))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:  # the container itself is damaged from here on
                at = f"{self.end / SAMPLE_RATE:.0f} s"
                raise InvalidInput(f"damaged recording: cannot read past {at} ({_one_line(e)})") from None
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.bad_frames += 1  # a damaged frame in a long file: skip it, as players do
                continue
            except av.error.FFmpegError as e:
                raise InvalidInput(f"cannot decode the {self.codec} audio ({_one_line(e)})") from None
            yield from frames

    def _pull(self) -> bool:
        """Decode and resample one more frame; False at the end of the track."""
        if self.exhausted:
            return False
        frame = next(self._frames, None)
        if frame is not None:
            frame.pts = None  # the resampler checks timestamps; samples are counted instead
        try:
            out = self._resampler.resample(frame)  # None flushes what the resampler still holds
        except ValueError as e:
            raise InvalidInput(f"cannot resample the {self.codec} audio ({_one_line(e)})") from None
        for f in out:
            a = f.to_ndarray().reshape(-1)
            if a.size:
                self._chunks.append(a)
                self._held += a.size
        self.peak_held = max(self.peak_held, self._held)
        if frame is None:
            self.exhausted = True
        return True

    def _drop_before(self, sample: int) -> None:
        while self._chunks and self._first + self._chunks[0].size <= sample:
            self._first += self._chunks[0].size
            self._held -= self._chunks[0].size
            self._chunks.pop(0)
        if self._chunks and self._first < sample:
            cut = sample - self._first
            self._chunks[0] = self._chunks[0][cut:].copy()
            self._first += cut
            self._held -= cut

    def read(self, start: int, count: int) -> np.ndarray:
        """Float32 samples from ``start`` (never before an earlier read's start); shorter at the end."""
        if start < self._first:
            raise ValueError("AudioStream reads forward only")
        self._drop_before(start)
        while self._first + self._held < start + count and self._pull():
            self._drop_before(start)  # skipping ahead (a resume) keeps nothing before the window
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        joined = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [joined]  # one array from here on, so later drops are cheap
        offset = start - self._first
        out = joined[offset : offset + count].astype(np.float32)
        out /= 32768.0
        return out

    @property
    def end(self) -> int:
        """Samples decoded so far; the track's length once ``exhausted``."""
        return self._first + self._held

    def at_end(self, sample: int) -> bool:
        """Whether the track ends at or before ``sample`` (decoding on to find out)."""
        while self.end <= sample and self._pull():
            pass
        return self.exhausted and self.end <= sample

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None
