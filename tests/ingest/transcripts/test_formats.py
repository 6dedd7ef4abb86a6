"""Transcript parsers: each format to the right segments, times and speakers; bad files to clear errors."""

from __future__ import annotations

import json

import pytest

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.captions import parse_srt, parse_webvtt
from lorebase.ingest.transcripts.formats import decode_text, parse_transcript
from lorebase.ingest.transcripts.json_segments import json_has_segments, parse_json_transcript
from lorebase.ingest.transcripts.plain_text import parse_plain_text
from lorebase.ingest.transcripts.segments import parse_timestamp


def rows(parsed):
    return [(s.start, s.end, s.text, s.speaker) for s in parsed.segments]


# --- timestamps and bytes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:01:23.456", 83.456), ("01:00:00.000", 3600.0), ("02:03.5", 123.5), ("00:00:07,250", 7.25), ("1:02:03", 3723.0)],
)
def test_timestamps(value: str, seconds: float) -> None:
    assert parse_timestamp(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["00:61:00.000", "1:2:3:4", "ab:cd.000", "00:00:75.000"])
def test_bad_timestamps_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="bad timestamp"):
        parse_timestamp(value)


def test_decode_utf8_with_bom_cp1252_latin1_and_utf16() -> None:
    assert decode_text("\ufeffcafé".encode()) == ("café", "utf-8")
    # 0x92 is a right single quote in cp1252 and invalid UTF-8: old Windows caption files.
    assert decode_text(b"it\x92s caf\xe9") == ("it\u2019s café", "cp1252")
    # 0x81 is undefined in cp1252: latin-1 still reads it rather than failing.
    text, enc = decode_text(b"na\x81ve caf\xe9")
    assert enc == "latin-1" and text.endswith("café")
    assert decode_text("WEBVTT\n\nhé".encode("utf-16")) == ("WEBVTT\n\nhé", "utf-16")


def test_binary_bytes_are_not_a_transcript() -> None:
    with pytest.raises(InvalidInput, match="binary"):
        decode_text(b"\x00\x00\x00\x18ftypmp42\x00\x00")


# --- WebVTT -----------------------------------------------------------------------------------

VTT = """WEBVTT - Week 3
Kind: captions
Language: en-GB

NOTE This note has
two lines and a --> arrow

STYLE
::cue { color: white }

REGION
id:fred width:40%

intro-1
00:00:01.000 --> 00:00:04.000 align:start position:10% line:0
<v.loud Dr. Ada Byron>Welcome to <i>week three</i>.</v>

00:04.000 --> 00:08.000
<v Sam>Is the <c.yellow>exam</c><00:00:05.500> open book?
<v Dr. Ada Byron>Yes, it is.

3
00:00:08.000 --> 00:00:10.500
Tom &amp; Jerry &lt;3 <b>bold</b> <lang fr>oui</lang>
"""


def test_vtt_cues_voices_and_inline_tags() -> None:
    parsed = parse_webvtt(VTT)
    assert parsed.format == "webvtt"
    assert parsed.meta == {"language": "en-GB"}
    got = rows(parsed)
    assert got[0] == (1.0, 4.0, "Welcome to week three.", "Dr. Ada Byron")
    # The cue with two voices splits its 4 s by words: 5 words for Sam, 3 for the lecturer.
    assert got[1] == (4.0, 6.5, "Is the exam open book?", "Sam")
    assert got[2] == (6.5, 8.0, "Yes, it is.", "Dr. Ada Byron")
    assert got[3] == (8.0, 10.5, "Tom & Jerry <3 bold oui", None)
    assert len(got) == 4  # NOTE, STYLE and REGION blocks give no segments
    assert parsed.speakers == ["Dr. Ada Byron", "Sam"]


def test_vtt_hour_long_timestamps_and_crlf() -> None:
    text = "WEBVTT\r\n\r\n01:02:03.000 --> 01:02:05.250\r\nLate in the lecture.\r\n"
    assert rows(parse_webvtt(text)) == [(3723.0, 3725.25, "Late in the lecture.", None)]


def test_vtt_roll_up_captions_keep_each_line_once() -> None:
    # YouTube's automatic captions repeat the last line of a cue at the top of the next one.
    text = """WEBVTT

00:00:00.000 --> 00:00:02.500 align:start position:0%
hello<00:00:00.480><c> everyone</c><00:00:01.000><c> and</c>

00:00:02.500 --> 00:00:02.510 align:start position:0%
hello everyone and

00:00:02.510 --> 00:00:05.000 align:start position:0%
hello everyone and
welcome<00:00:03.000><c> to</c><00:00:03.500><c> the</c><00:00:04.000><c> course</c>
"""
    parsed = parse_webvtt(text)
    assert " ".join(s.text for s in parsed.segments) == "hello everyone and welcome to the course"


def test_vtt_without_header_is_refused() -> None:
    with pytest.raises(InvalidInput, match="first line must be 'WEBVTT'"):
        parse_webvtt("00:00:01.000 --> 00:00:02.000\nHello\n")


def test_vtt_bad_timing_names_the_line() -> None:
    with pytest.raises(InvalidInput, match=r"line 4: bad timestamp '00:00:0x.000'"):
        parse_webvtt("WEBVTT\n\n1\n00:00:0x.000 --> 00:00:02.000\nHello\n")


def test_vtt_with_no_cues_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no cues"):
        parse_webvtt("WEBVTT\n\nNOTE nothing here\n")


# --- SRT --------------------------------------------------------------------------------------


def test_srt_bom_crlf_comma_millis_tags_and_missing_blank_lines() -> None:
    text = (
        "\ufeff1\r\n00:00:01,000 --> 00:00:03,500\r\n<i>Hello</i> and {\\an8}welcome.\r\n\r\n"
        "2\r\n00:00:03,500 --> 00:00:06,000 X1:100 X2:200\r\nA cue on\r\ntwo lines.\r\n"  # no blank line next
        "3\r\n00:00:07,000 --> 00:00:09,000\r\n<font color=\"#fff\">Last</font> cue."  # no newline at the end
    )
    assert rows(parse_srt(text)) == [
        (1.0, 3.5, "Hello and welcome.", None),
        (3.5, 6.0, "A cue on two lines.", None),
        (7.0, 9.0, "Last cue.", None),
    ]


def test_srt_cue_text_that_is_a_number_is_kept() -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\n42\n\n2\n00:00:02,000 --> 00:00:03,000\nis the answer.\n"
    assert [s.text for s in parse_srt(text).segments] == ["42", "is the answer."]


def test_srt_speaker_labels_carry_over_until_the_next_label() -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:03,000\nLECTURER: Today we cover BM25.\n\n"
        "2\n00:00:03,000 --> 00:00:05,000\nIt is a ranking function.\n\n"
        "3\n00:00:05,000 --> 00:00:07,000\nSTUDENT: Who invented it?\n\n"
        "4\n00:00:07,000 --> 00:00:09,000\nNote: this is not a speaker.\n"
    )
    got = [(s.text, s.speaker) for s in parse_srt(text).segments]
    assert got == [
        ("Today we cover BM25.", "LECTURER"),
        ("It is a ranking function.", "LECTURER"),
        ("Who invented it?", "STUDENT"),
        ("Note: this is not a speaker.", "STUDENT"),
    ]


def test_srt_timestamps_going_backwards_wildly_are_refused() -> None:
    text = (
        "1\n00:10:00,000 --> 00:10:02,000\nLate.\n\n"
        "2\n00:01:00,000 --> 00:01:02,000\nThen far earlier.\n"
    )
    with pytest.raises(InvalidInput, match="backwards at segment 2"):
        parse_srt(text)


def test_srt_small_overlaps_are_clipped_not_refused() -> None:
    text = (
        "1\n00:00:01,000 --> 00:00:05,000\nFirst.\n\n"
        "2\n00:00:04,000 --> 00:00:06,000\nSecond overlaps.\n"
    )
    assert rows(parse_srt(text)) == [(1.0, 4.0, "First.", None), (4.0, 6.0, "Second overlaps.", None)]


def test_srt_cue_ending_long_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"ends .* before it starts"):
        parse_srt("1\n00:00:10,000 --> 00:00:02,000\nBackwards.\n")


def test_srt_without_cues_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no SRT cues"):
        parse_srt("just some text\nwithout timings\n")


# --- plain text -------------------------------------------------------------------------------


def test_plain_text_with_timestamps_and_speakers() -> None:
    text = (
        "[00:00:05] LECTURER: Welcome to the lecture.\n"
        "This line wraps the same paragraph.\n"
        "\n"
        "(1:23) STUDENT: Can you repeat that?\n"
        "00:02:00 LECTURER: Of course.\n"
    )
    parsed = parse_plain_text(text)
    assert "times_estimated" not in parsed.meta
    got = rows(parsed)
    assert got[0] == (5.0, 83.0, "Welcome to the lecture. This line wraps the same paragraph.", "LECTURER")
    assert got[1] == (83.0, 120.0, "Can you repeat that?", "STUDENT")
    assert got[2][:2] == (120.0, pytest.approx(120.8))  # the last line lasts as long as its 2 words take
    assert got[2][2:] == ("Of course.", "LECTURER")


def test_plain_text_without_timestamps_estimates_150_words_a_minute() -> None:
    para1 = " ".join(["word"] * 149) + " end."  # 150 words: one minute
    para2 = " ".join(["more"] * 74) + " done."  # 75 words: thirty seconds
    parsed = parse_plain_text(f"{para1}\n\n{para2}\n")
    assert parsed.meta["times_estimated"] is True
    assert [(s.start, s.end) for s in parsed.segments] == [(0.0, 60.0), (60.0, 90.0)]


def test_plain_text_names_used_once_are_prose_not_speakers() -> None:
    parsed = parse_plain_text("Remember: the exam is on Monday.\nAlice: hi\n\nAlice: hello again\n")
    assert [s.speaker for s in parsed.segments] == [None, "Alice", "Alice"]
    assert parsed.segments[0].text == "Remember: the exam is on Monday."


def test_plain_text_empty_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty file"):
        parse_transcript("  \n\n", ".txt")


# --- JSON -------------------------------------------------------------------------------------


def test_whisper_json_with_speakers() -> None:
    data = {
        "text": " Hello. Hi there.",
        "language": "en",
        "segments": [
            {"id": 0, "seek": 0, "start": 0.0, "end": 2.24, "text": " Hello.", "speaker": "SPEAKER_00"},
            {"id": 1, "seek": 0, "start": 2.24, "end": 4.0, "text": " Hi there.", "speaker": "SPEAKER_01"},
        ],
    }
    parsed = parse_json_transcript(json.dumps(data))
    assert parsed.format == "whisper_json" and parsed.meta == {"language": "en"}
    assert rows(parsed) == [(0.0, 2.24, "Hello.", "SPEAKER_00"), (2.24, 4.0, "Hi there.", "SPEAKER_01")]


def test_caption_list_with_duration_or_end() -> None:
    data = [{"start": 1.5, "duration": 2.0, "text": "First"}, {"start": "3.5", "end": 6, "text": "second."}]
    parsed = parse_json_transcript(json.dumps(data))
    assert parsed.format == "caption_json"
    assert rows(parsed) == [(1.5, 3.5, "First", None), (3.5, 6.0, "second.", None)]


def test_youtube_json3_events() -> None:
    data = {
        "wireMagic": "pb3",
        "events": [
            {"tStartMs": 0, "dDurationMs": 9000, "id": 1, "wpWinPosId": 1},  # a window, no text
            {"tStartMs": 120, "dDurationMs": 3000, "segs": [{"utf8": "so"}, {"utf8": " today", "tOffsetMs": 400}]},
            {"tStartMs": 2000, "aAppend": 1, "segs": [{"utf8": "\n"}]},
            {"tStartMs": 2500, "dDurationMs": 2500, "segs": [{"utf8": "we begin"}]},
        ],
    }
    parsed = parse_json_transcript(json.dumps(data))
    assert parsed.format == "youtube_json3"
    assert rows(parsed) == [(0.12, 2.5, "so today", None), (2.5, 5.0, "we begin", None)]  # overlap clipped


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"title": "a sidecar, not a transcript"}', "no transcript segments"),
        ("[1, 2, 3]", "no transcript segments"),
        ('{"segments": []}', "empty segment list"),
        ('{"segments": [{"end": 1, "text": "x"}]}', "segment 1 has no 'start'"),
        ('{"segments": [{"start": "soon", "end": 1, "text": "x"}]}', "'start' must be a number"),
        ('[{"start": 0, "text": "x"}]', "neither 'end' nor 'duration'"),
        ('{"segments": [', "not valid JSON"),
    ],
)
def test_json_of_the_wrong_shape_is_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_json_transcript(text)


def test_json_has_segments_tells_transcripts_from_sidecars() -> None:
    assert json_has_segments({"segments": []})
    assert json_has_segments({"events": []})
    assert json_has_segments([{"start": 0, "end": 1, "text": "x"}])
    assert not json_has_segments({"title": "x", "date": "2024-03-05"})
    assert not json_has_segments([])


def test_unknown_suffix_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a transcript format"):
        parse_transcript("x", ".docx")
