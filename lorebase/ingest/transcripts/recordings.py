"""Transcribing recordings offline with faster-whisper, resumably and once per recording.

The audio is decoded forward only (:class:`~lorebase.ingest.transcripts.media.AudioStream`) and handed to
Whisper one window (``transcribe.window_s``) at a time, so memory stays bounded on a two-hour
lecture. Within a window the segments stream out of faster-whisper's generator; each finished one
is appended to a JSONL checkpoint in the data home and flushed at once. A segment that reaches the
window's last ``edge`` seconds may be cut by the window end: it is not kept, and the next window
starts in the gap before it. The same rule makes an interrupted run resume: it starts decoding at
the last checkpointed end and appends, never starting over and never repeating a segment.

The checkpoint (lorebase.ingest.transcripts.checkpoint) is named by the recording's content hash
and a short tag of the settings that shape the result (model, precision, language, beam, VAD).
Once it ends with a ``done`` line it is the cached transcript: an unchanged recording is never
transcribed twice, while a deliberate settings change transcribes anew. Tagging the settings also
keeps one transcript from mixing two models. Silence-only audio is cached too, as zero segments.

``clip_timestamps`` (faster-whisper 1.2.1) was not used to resume: with it the installed version
switches VAD off and still decodes and featurises the whole file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorebase.errors import InvalidInput, ModelNotAvailable
from lorebase.ingest.transcripts.checkpoint import CHECKPOINT_VERSION, Checkpoint, SpeechSegment, Word
from lorebase.ingest.transcripts.chunks import ends_sentence
from lorebase.ingest.transcripts.media import SAMPLE_RATE, AudioStream, media_hash
from lorebase.ingest.transcripts.segments import ParsedTranscript, Segment
from lorebase.settings import Settings

__all__ = ["Checkpoint", "SpeechSegment", "Transcriber", "Transcript", "Word", "read_cached", "to_parsed"]

log = logging.getLogger(__name__)

MAX_EDGE_S = 15.0  # segments ending this close to a window's cut are redone in the next window


@dataclass
class Transcript:
    media_hash: str
    duration: float  # seconds of audio in the recording
    language: str | None
    model: str
    compute_type: str
    segments: list[SpeechSegment]
    fresh: bool = False  # transcribed (or finished) by this call rather than read from the cache


def transcripts_dir(settings: Settings) -> Path:
    """Exports (VTT/SRT by lecture id) and, under ``.checkpoints``, the transcripts by media hash."""
    return settings.home / "transcripts"


def recipe(settings: Settings) -> dict[str, Any]:
    """The settings that shape a transcript; a change to any of them transcribes anew."""
    t = settings.transcribe
    return {
        "model": settings.models.whisper,
        "compute_type": t.compute_type,
        "language": t.language,
        "beam_size": t.beam_size,
        "vad": t.vad,
    }


def checkpoint_path(settings: Settings, digest: str) -> Path:
    tag = hashlib.sha256(json.dumps(recipe(settings), sort_keys=True).encode()).hexdigest()[:8]
    return transcripts_dir(settings) / ".checkpoints" / f"{digest}-{tag}.jsonl"


def read_cached(settings: Settings, digest: str) -> Transcript | None:
    """The finished transcript of this recording under the current settings, if there is one."""
    header = _header(settings, digest)
    ck = Checkpoint.read(checkpoint_path(settings, digest), header)
    if ck is None or ck.duration is None:
        return None
    return _transcript(header, ck.duration, ck.language, ck.segments, fresh=False)


def _header(settings: Settings, digest: str) -> dict[str, Any]:
    return {"version": CHECKPOINT_VERSION, "media_hash": digest, **recipe(settings)}


def _transcript(header: dict[str, Any], duration: float, language: str | None, segments: list[SpeechSegment],
                fresh: bool) -> Transcript:
    return Transcript(header["media_hash"], duration, language, header["model"], header["compute_type"], segments, fresh)


# --- transcription -------------------------------------------------------------------------------


def load_whisper(settings: Settings) -> Any:
    """faster-whisper's model from the configured folder (never a hub name), on every core this process may use."""
    from faster_whisper import WhisperModel

    from lorebase.offline_models import whisper_path

    folder = whisper_path(settings)
    try:
        return WhisperModel(
            str(folder), device="cpu", compute_type=settings.transcribe.compute_type,
            cpu_threads=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as e:
        raise ModelNotAvailable(f"cannot load the speech model in {folder}: {e}") from None


class Transcriber:
    """Recordings to timed segments, cached and resumable (see the module docstring).

    ``model`` is anything with faster-whisper's ``transcribe``; by default the configured model is
    loaded on the first recording that needs it. ``on_segment`` is called after each segment is
    checkpointed (an interruption raised from it leaves a resumable checkpoint)."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: Any | None = None,
        progress: bool = False,
        on_segment: Callable[[SpeechSegment], None] | None = None,
        window_s: float | None = None,
    ) -> None:
        self.settings = settings
        self._model = model
        self.progress = progress
        self.on_segment = on_segment
        self.window_s = window_s or settings.transcribe.window_s
        self.edge_s = min(MAX_EDGE_S, self.window_s / 4)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_whisper(self.settings)
        return self._model

    def transcribe(self, path: Path, digest: str | None = None) -> Transcript:
        """The transcript of one recording: from the cache when its content is unchanged, else
        transcribed (resuming a checkpoint when there is one). Raises InvalidInput with a
        one-line reason for a file that cannot be decoded."""
        digest = digest or media_hash(path)
        cached = read_cached(self.settings, digest)
        if cached is not None:
            return cached
        header = _header(self.settings, digest)
        with AudioStream(path) as audio:  # an undecodable file fails here, before anything is written
            ck = Checkpoint.open(checkpoint_path(self.settings, digest), header)
            try:
                if not ck.done:
                    self._run(audio, path.name, ck)
                assert ck.duration is not None
                return _transcript(header, ck.duration, ck.language, list(ck.segments), fresh=True)
            finally:
                ck.close()

    def _run(self, audio: AudioStream, name: str, ck: Checkpoint) -> None:
        sr = SAMPLE_RATE
        window, edge = round(self.window_s * sr), round(self.edge_s * sr)
        pos = round(ck.resume_at * sr)
        language = ck.language or self.settings.transcribe.language
        if ck.segments:
            log.info("resuming %s at %.1f s (%d segments done)", name, ck.resume_at, len(ck.segments))
        else:
            log.info("transcribing %s (%s of audio)", name, f"{audio.duration:.0f} s" if audio.duration else "unknown length")
        with self._bar(name, audio.duration, pos / sr) as bar:
            while True:
                chunk = audio.read(pos, window)
                last = audio.at_end(pos + window)
                if chunk.size == 0:
                    break
                offset = pos / sr
                segments: Iterable[Any] = ()
                info: Any = None
                # Until the language is known Whisper spends a full encoder pass detecting it, even
                # on silence: ask the (cheap) VAD first whether there is anything to decode.
                if not (self.settings.transcribe.vad and language is None and not _has_speech(chunk)):
                    segments, info = self.model.transcribe(
                        chunk,
                        language=language,
                        beam_size=self.settings.transcribe.beam_size,
                        vad_filter=self.settings.transcribe.vad,
                        word_timestamps=True,
                    )
                kept_end: float | None = None
                cut_at: float | None = None  # start of the first segment left for the next window
                for seg in segments:  # decoding happens as this generator is consumed
                    crosses = not last and seg.end * sr > window - edge
                    if crosses and (kept_end is not None or seg.start * sr > sr):
                        cut_at = offset + seg.start
                        break
                    # (A crossing segment that starts the window is kept whole: the next window
                    # could not begin before it, and dropping it would lose its speech.)
                    done = _segment(seg, offset)
                    if done.text:
                        if language is None:  # detected where speech first occurs; kept from then on
                            language = info.language
                            ck.set_language(info.language, info.language_probability)
                        ck.add(done)
                        if self.on_segment is not None:
                            self.on_segment(done)
                    kept_end = done.end
                    bar.update(max(0.0, done.end - bar.n))
                    if crosses:
                        break
                if last:
                    break
                nxt = _next_start(pos, kept_end, cut_at, window - edge)
                log.info("%s: %.0f of %s s transcribed, %d segments", name, nxt / sr,
                         f"{audio.duration:.0f}" if audio.duration else "?", len(ck.segments))
                bar.update(max(0.0, nxt / sr - bar.n))
                pos = nxt
            duration = audio.end / sr
            if audio.bad_frames and audio.duration and duration < 0.5 * audio.duration:
                raise InvalidInput(
                    f"damaged recording: only {duration:.0f} of {audio.duration:.0f} s could be decoded "
                    f"({audio.bad_frames} bad frames)"
                )
            if audio.duration and duration < 0.9 * audio.duration:  # declared lengths can be estimates
                log.warning("%s: decoded %.0f s of the %.0f s its header declares; the file may be cut short",
                            name, duration, audio.duration)
            bar.update(max(0.0, duration - bar.n))
        ck.finish(round(duration, 3))

    def _bar(self, name: str, total: float | None, initial: float) -> Any:
        from tqdm import tqdm

        known = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]"
        return tqdm(
            total=round(total, 1) if total else None, initial=round(initial, 1), desc=f"transcribing {name}",
            unit=" s of audio", disable=not self.progress, file=sys.stderr, leave=False,
            bar_format=known if total else "{desc}: {n:.0f} s of audio [{elapsed}]",
        )


def _has_speech(samples: Any) -> bool:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(samples, VadOptions(), sampling_rate=SAMPLE_RATE))


def _segment(seg: Any, offset: float) -> SpeechSegment:
    words = tuple(
        Word(round(offset + float(w.start), 3), round(offset + float(w.end), 3), w.word, round(float(w.probability), 4))
        for w in (seg.words or ())
    )
    return SpeechSegment(round(offset + float(seg.start), 3), round(offset + float(seg.end), 3), seg.text.strip(), words)


def _next_start(pos: int, kept_end: float | None, cut_at: float | None, fallback: int) -> int:
    """Where the next window starts (in samples): in the gap before the segment left over, else
    after the last kept one; always forward, so a window of nothing but noise cannot loop."""
    sr = SAMPLE_RATE
    candidates = []
    if kept_end is not None and cut_at is not None and cut_at > kept_end:
        candidates.append(round((kept_end + cut_at) / 2 * sr))
    if kept_end is not None:
        candidates.append(round(kept_end * sr))
    if cut_at is not None:
        candidates.append(round(cut_at * sr))
    for c in candidates:
        if c > pos + sr:  # at least a second of progress
            return c
    return pos + fallback


# --- from segments to the transcript reader's shape ----------------------------------------------


def sentence_segments(segments: list[SpeechSegment]) -> Iterator[tuple[float, float, str]]:
    """Whisper segments cut at sentence ends using word timestamps, so a chunk boundary falls
    exactly where a sentence ends rather than at a time shared out by characters."""
    for seg in segments:
        if len(seg.words) < 2:
            yield seg.start, seg.end, seg.text
            continue
        start = seg.words[0].start
        text = ""
        for i, w in enumerate(seg.words):
            text += w.text
            if i == len(seg.words) - 1 or ends_sentence(text.strip()):
                if text.strip():
                    yield start, w.end, text.strip()
                text = ""
                if i + 1 < len(seg.words):
                    start = seg.words[i + 1].start


def to_parsed(transcript: Transcript, recording: str) -> ParsedTranscript:
    """The transcript in the shape the transcript reader chunks, with the recording's facts as meta."""
    rows = [(s, e, " ".join(t.split())) for s, e, t in sentence_segments(transcript.segments)]
    rows = [r for r in rows if r[2]]
    segments = [
        Segment(start, max(start, min(end, rows[i + 1][0])) if i + 1 < len(rows) else max(start, end), text)
        for i, (start, end, text) in enumerate(rows)
    ]
    meta = {
        "origin": "whisper",
        "recording": recording,
        "duration": transcript.duration,
        "language": transcript.language,
        "model": transcript.model,
        "compute_type": transcript.compute_type,
        "media_hash": transcript.media_hash,
    }
    return ParsedTranscript("whisper", segments, meta)
