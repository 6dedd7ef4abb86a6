"""Speech-to-text speed and accuracy: Whisper base, int8 against float32, through lorebase's own path.

Run (about a minute on 2 cores):

    .venv/bin/python bench/bench_whisper.py --out bench/results/whisper.md

espeak-ng (Debian package espeak-ng) speaks a fixed lecture-like text of about 50 s into a WAV.
Each precision transcribes it with ``lorebase.ingest.transcripts.recordings.Transcriber`` in a fresh data home
(streamed decoding, VAD, beam 5, word timestamps: what `lorebase ingest` runs), once to warm up
and then ``--repeat`` times, each precision in its own process. Reported: the real-time factor
(seconds of audio per second of wall time, higher is faster; median of the repeats), word error
rate against the spoken text, model load time, and the process's peak resident memory. The model
is the packaged Whisper base, joined into a temporary folder unless ``--model`` names a
CTranslate2 Whisper folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

from lorebase.eval.wer import word_error_rate
from lorebase.ingest.transcripts.recordings import Transcriber, load_whisper
from lorebase.offline_models import assemble_whisper
from lorebase.settings import load_settings

TEXT = [
    "Welcome back to the course on data structures.",
    "Today we talk about hash tables.",
    "A hash function maps each key to one of many buckets.",
    "When two keys land in the same bucket, we have a collision.",
    "Collisions are resolved by chaining or by open addressing.",
    "With chaining, every bucket holds a short list of entries.",
    "The load factor is the number of entries divided by the number of buckets.",
    "When the load factor grows too large, the table doubles its size.",
    "Resizing costs linear time, but it happens rarely.",
    "So the average lookup takes constant time.",
    "In the worst case, every key collides and a lookup takes linear time.",
    "Next week we will study balanced search trees.",
]


def speak(out: Path) -> float:
    ssml = "<speak>" + '<break time="500ms"/>'.join(TEXT) + "</speak>"
    subprocess.run(["espeak-ng", "-m", "-v", "en", "-w", str(out), ssml], check=True)
    return wav_seconds(out)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def run(compute_type: str, model_dir: Path, wav: Path, seconds: float, repeat: int, work: Path) -> dict[str, float]:
    def settings(i: int):  # a fresh data home each time: nothing comes from the cache
        return load_settings(home=work / f"{compute_type}-{i}", models={"whisper": str(model_dir)},
                             transcribe={"compute_type": compute_type})

    t0 = time.perf_counter()
    model = load_whisper(settings(0))
    load_s = time.perf_counter() - t0
    Transcriber(settings(0), model=model).transcribe(wav)  # warm-up
    walls, wers = [], []
    for i in range(1, repeat + 1):
        t0 = time.perf_counter()
        result = Transcriber(settings(i), model=model).transcribe(wav)
        walls.append(time.perf_counter() - t0)
        wers.append(word_error_rate(" ".join(TEXT), " ".join(s.text for s in result.segments)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rtf": seconds / statistics.median(walls), "wer": statistics.median(wers), "load_s": load_s, "peak_mb": peak,
            "wall_s": statistics.median(walls)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the markdown table here too")
    ap.add_argument("--model", type=Path, help="a CTranslate2 Whisper folder (default: the packaged Whisper base)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per precision after one warm-up (median)")
    ap.add_argument("--compute-types", default="int8,float32")
    ap.add_argument("--one", nargs=4, metavar=("TYPE", "MODEL", "WAV", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # the child: one precision, result as JSON on stdout
        ct, model, wav, work = args.one
        print(json.dumps(run(ct, Path(model), Path(wav), wav_seconds(Path(wav)), args.repeat, Path(work))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-whisper-") as tmp:
        work = Path(tmp)
        wav = work / "lecture.wav"
        seconds = speak(wav)
        model_dir = args.model or assemble_whisper(work / "whisper-base")
        rows = []
        for ct in args.compute_types.split(","):
            child = subprocess.run(
                [sys.executable, __file__, "--repeat", str(args.repeat), "--one", ct, str(model_dir), str(wav), str(work)],
                check=True, capture_output=True, text=True,
            )
            r = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append((ct, r))
            print(f"{ct}: {r}", file=sys.stderr)

    import ctranslate2
    import faster_whisper

    lines = [
        "## Whisper base on CPU: speed and word error rate",
        "",
        f"- Machine: {cpu_name()}, {os.cpu_count()} cores (all used: cpu_threads={os.cpu_count()}), "
        f"Python {platform.python_version()}, faster-whisper {faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Audio: {seconds:.1f} s of espeak-ng speech ({len(TEXT)} sentences, {len(' '.join(TEXT).split())} words), "
        "transcribed through lorebase's Transcriber (streamed decoding, VAD, beam 5, word timestamps); "
        f"median of {args.repeat} runs after a warm-up, each precision in its own process",
        "",
        "| compute type | real-time factor (audio s / wall s) | wall s | WER | model load s | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for ct, r in rows:
        lines.append(f"| {ct} | {r['rtf']:.1f}x | {r['wall_s']:.1f} | {r['wer'] * 100:.1f}% | {r['load_s']:.1f} | {r['peak_mb']:.0f} |")
    lines += ["", f"Load average while running: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              "(other work on the machine slows the figures)."]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
