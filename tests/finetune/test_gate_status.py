"""An eval run reports the latest decision of both gates: the generator's LoRA gate, read from the
adapter registry as `lorebase train` records it, and the embedder's tuning gate, read from the
tuned embedder folders as `lorebase embedder tune` leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lorebase.cli.eval_cmd import format_run
from lorebase.eval.report_html import render
from lorebase.finetune.embedder_tuning import META_FILE, GateScores, TuningResult, embedders_dir, judge, save_meta
from lorebase.finetune.gate import Scored, decide
from lorebase.finetune.gate_run import GateReport, record
from lorebase.finetune.gate_status import format_gates, latest_gates
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import AdapterVersion
from tests.eval.test_eval_reports import parsed, report


def gated_adapter(store: Store, settings: Settings, name: str, cand: float, cur: float, created: datetime) -> None:
    folder = settings.home / "adapters" / name
    folder.mkdir(parents=True)
    with store.session() as s:
        s.add(AdapterVersion(name=name, path=str(folder), base_model="tiny", data_hash="0" * 64, status="candidate",
                             created_at=created))
    means_c = {"verified_and_cites_gold": cand, "rougeL": 0.5, "false_abstention": 0.0}
    means_b = {"verified_and_cites_gold": cur, "rougeL": 0.4, "false_abstention": 0.0}
    intervals = {"verified_and_cites_gold": (cand - cur - 0.05, cand - cur + 0.05)}
    decision = decide(means_c, means_b, main="verified_and_cites_gold", tolerance=0.02, min_gain=0.1, intervals=intervals)
    rep = GateReport(name, "base", 40, "none", Scored(name, [], means=means_c), Scored("base", [], means=means_b),
                     decision, intervals=intervals)
    record(store, rep, promote=decision.passed)


def tuned_embedder(settings: Settings, name: str, mrr: tuple[float, float]) -> None:
    verdict = judge(GateScores(300, 3000, mrr[0], 0.3, 0.7), GateScores(300, 3000, mrr[1], 0.4, 0.8), 0.005)
    result = TuningResult(name, str(embedders_dir(settings) / name), 1000, 900, 300, 812.5, verdict.as_dict(),
                          promoted=verdict.promote)
    folder = embedders_dir(settings) / name
    folder.mkdir(parents=True)
    save_meta(folder, result, base="minilm")  # as `lorebase embedder tune` leaves it


def test_a_home_where_no_gate_ran_says_so(settings: Settings, store: Store) -> None:
    gates = latest_gates(settings, store)
    assert gates == {"generator": None, "embedder": None}
    assert format_gates(gates) == ["generator gate: never run (`lorebase train`)",
                                   "embedder gate: never run (`lorebase embedder tune`)"]


def test_the_newest_decision_of_each_gate_is_reported_with_its_numbers(settings: Settings, store: Store) -> None:
    t0 = datetime(2026, 12, 5, 8, tzinfo=UTC)
    gated_adapter(store, settings, "auto-a", cand=0.70, cur=0.49, created=t0)  # passes: promoted
    gated_adapter(store, settings, "auto-b", cand=0.50, cur=0.70, created=t0 + timedelta(hours=2))  # fails against it
    with store.session() as s:  # an adapter that was trained but never gated is not a decision
        s.add(AdapterVersion(name="auto-c", path="/nowhere", base_model="tiny", data_hash="1" * 64, status="candidate",
                             created_at=t0 + timedelta(hours=3)))
    tuned_embedder(settings, "tuned-20261205-050000", (0.35, 0.57))
    tuned_embedder(settings, "tuned-20261205-060000", (0.57, 0.56))

    gates = latest_gates(settings, store)
    g, e = gates["generator"], gates["embedder"]
    assert g is not None and e is not None
    assert (g["adapter"], g["passed"], g["status"], g["against"], g["examples"]) == ("auto-b", False, "rejected", "base", 40)
    main = g["metrics"]["verified_and_cites_gold"]
    assert (main["current"], main["candidate"]) == (0.70, 0.50) and main["ci95"] == pytest.approx([-0.25, -0.15])
    assert g["main_metric"] == "verified_and_cites_gold" and g["reasons"]
    assert (e["embedder"], e["promoted"], e["held_out_pairs"]) == ("tuned-20261205-060000", False, 300)
    assert e["current"]["mrr"] == 0.57 and e["candidate"]["mrr"] == 0.56 and "MRR@10" in e["reason"]

    lines = format_gates(gates)
    assert lines[0].startswith("generator gate: auto-b failed against base on 40 held-out examples") and lines[0].endswith("now rejected")
    assert lines[1].startswith("embedder gate: tuned-20261205-060000 not promoted on 300 held-out pairs")

    rep = report(7, [], {}, gates=gates)
    text = " ".join(parsed(render(rep)).text)
    assert "auto-b: failed against base on 40 held-out examples" in " ".join(text.split())
    assert "verified_and_cites_gold (main)" in text and "[-0.250, -0.150]" in text
    assert "tuned-20261205-060000: not promoted on 300 held-out pairs" in " ".join(text.split())
    assert "0.570" in text and "0.560" in text
    assert "generator gate: auto-b failed" in format_run(rep)


def test_a_report_written_before_gates_were_reported_still_renders() -> None:
    text = " ".join(parsed(render(report(3, [], {}))).text)
    assert "Never run here" in text


def test_damaged_gate_records_are_reported_as_far_as_they_go(settings: Settings, store: Store) -> None:
    """An eval run reports the gates at its end: a damaged record must not cost it the run."""
    with store.session() as s:
        s.add(AdapterVersion(name="odd", path="/nowhere", base_model="tiny", data_hash="2" * 64, status="rejected",
                             metrics={"gate": {"at": "2026-12-05T09:00:00", "decision": ["not", "a", "dict"],
                                               "metrics": {"candidate": {"rougeL": 0.4}, "current": 7},
                                               "ci95": {"rougeL": 0.1}}}))
    tuned_embedder(settings, "tuned-20261205-050000", (0.35, 0.57))
    broken = embedders_dir(settings) / "tuned-20261205-070000"
    broken.mkdir()
    (broken / META_FILE).write_text("[1, 2]")  # newer, but not a tuning record
    (embedders_dir(settings) / "tuned-20261205-080000").mkdir()
    (embedders_dir(settings) / "tuned-20261205-080000" / META_FILE).write_text("{truncated")

    gates = latest_gates(settings, store)
    g, e = gates["generator"], gates["embedder"]
    assert g is not None and e is not None
    assert (g["adapter"], g["passed"], g["reasons"]) == ("odd", False, [])
    assert g["metrics"] == {"rougeL": {"current": None, "candidate": 0.4, "ci95": None}}
    assert e["embedder"] == "tuned-20261205-050000" and e["promoted"] is True
    assert len(format_gates(gates)) == 2
    assert "odd: failed" in " ".join(" ".join(parsed(render(report(1, [], {}, gates=gates))).text).split())
