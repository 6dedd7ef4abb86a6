"""An evaluation run as one self-contained HTML page: bars per metric, a table per source kind, a
trend over earlier runs, judge failures and the worst-scored questions.

Charts are inline SVG drawn here; there is no script and nothing loads from the network (the page
says so to the browser with a Content-Security-Policy). Every text goes through jinja2's
autoescaping; links are made only for http(s) addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import Environment

from lorebase.eval import catalog
from lorebase.eval.stats import question_score

PALETTE = ("#2f6db5", "#d9822b", "#3a9a5b", "#b8432f", "#7a52a8", "#4d4d4d")
BAR_X, BAR_W, ROW_H = 330, 360, 22
TREND_W, TREND_H, PAD = 680, 240, 40


def _fmt(v: Any, places: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{places}f}"
    return str(v)


def _bars(report: dict[str, Any]) -> dict[str, Any]:
    """Rows of the metric bar chart, grouped, with their geometry."""
    k = report.get("k", 10)
    judge = report.get("judge")
    judge_name = judge.get("name") if isinstance(judge, dict) else judge
    judged = f"RAGAS, judged by {judge_name}" if judge_name else "RAGAS, judged (no judge in this run)"
    groups = [(judged, catalog.JUDGE), ("RAGAS, no LLM", catalog.NO_LLM),
              ("Retrieval", catalog.retrieval_names(k)), ("Summaries", catalog.SUMMARY)]
    metrics, counts = report.get("metrics", {}), report.get("counts", {})
    rows: list[dict[str, Any]] = []
    y = 0
    for title, names in groups:
        rows.append({"header": True, "label": title, "y": y + 15})
        y += ROW_H
        for n in names:
            v = metrics.get(n)
            width = max(0.0, min(1.0, float(v))) * BAR_W if v is not None else 0.0
            rows.append({"header": False, "label": n, "y": y, "text_y": y + 15, "width": round(width, 1),
                         "value": _fmt(v), "n": counts.get(n, 0), "about": catalog.about(n), "missing": v is None})
            y += ROW_H
    return {"rows": rows, "height": y + 4, "width": BAR_X + BAR_W + 90, "bar_x": BAR_X, "bar_w": BAR_W}


def _trend(report: dict[str, Any], earlier: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    runs = [{"id": r["id"], "metrics": r.get("metrics") or {}} for r in earlier]
    runs.append({"id": report["id"], "metrics": report.get("metrics") or {}})
    if len(runs) < 2:
        return None
    span_x = TREND_W - 2 * PAD
    step = span_x / (len(runs) - 1)
    xs = [PAD + i * step for i in range(len(runs))]

    def y_of(v: float) -> float:
        return PAD / 2 + (1 - max(0.0, min(1.0, v))) * (TREND_H - 1.5 * PAD)

    series = []
    for color, name in zip(PALETTE, catalog.TREND, strict=False):
        points = [(round(x, 1), round(y_of(float(r["metrics"][name])), 1), r["id"], _fmt(r["metrics"][name]))
                  for x, r in zip(xs, runs, strict=True) if r["metrics"].get(name) is not None]
        if points:
            path = " ".join(f"{'M' if i == 0 else 'L'}{px},{py}" for i, (px, py, _, _) in enumerate(points))
            series.append({"name": name, "color": color, "points": points, "path": path})
    grid = [{"y": round(y_of(v), 1), "label": f"{v:g}"} for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    ticks = [{"x": round(x, 1), "label": f"#{r['id']}"} for x, r in zip(xs, runs, strict=True)]
    return {"width": TREND_W, "height": TREND_H, "series": series, "grid": grid, "ticks": ticks,
            "x0": PAD, "x1": TREND_W - PAD, "axis_y": TREND_H - PAD, "legend_y": TREND_H - 8}


def _by_kind(report: dict[str, Any]) -> dict[str, Any]:
    k = report.get("k", 10)
    kinds = list((report.get("by_kind") or {}).keys())
    table = report.get("by_kind") or {}
    rows = []
    for n in catalog.quality_names(k):
        cells = []
        for kind in kinds:
            v = table[kind].get(n)
            cells.append({"value": _fmt(v), "pct": round(max(0.0, min(1.0, v)) * 100) if v is not None else 0})
        rows.append({"name": n, "cells": cells, "overall": _fmt(report.get("metrics", {}).get(n))})
    return {"kinds": kinds, "sizes": [table[kd].get("n", 0) for kd in kinds], "rows": rows}


def _safe_url(uri: str | None) -> str | None:
    return uri if uri and uri.startswith(("https://", "http://")) else None


def _questions(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    k = report.get("k", 10)
    names = catalog.quality_names(k)
    by_id = {q["id"]: q for q in report.get("questions", [])}
    rows = []
    for q in report.get("questions", []):
        score = question_score(q.get("scores", {}), names)
        rows.append({**q, "score": _fmt(score), "n_failures": len(q.get("failures", {})),
                     "latency": _fmt(q.get("latency_s"), 2)})
    worst = []
    for qid in report.get("worst", []):
        q = by_id.get(qid)
        if q is None:
            continue
        scores = [{"name": n, "value": _fmt(q["scores"].get(n))} for n in names if n in q.get("scores", {})]
        sources = [{**s, "href": _safe_url(s.get("uri"))} for s in q.get("sources", [])]
        worst.append({**q, "score": _fmt(question_score(q.get("scores", {}), names)), "score_list": scores, "source_list": sources})
    return rows, worst


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lorebase eval run {{ r.id }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta td:first-child { color: #666; }
.cell { position: relative; min-width: 70px; } .cell .fill { position: absolute; left: 0; top: 2px; bottom: 2px; background: #dbe7f5; z-index: -1; }
.fail { color: #b8432f; font-weight: 600; } .muted { color: #777; }
.q { border: 1px solid #e4e4e4; border-radius: 6px; padding: .6em 1em; margin: 1em 0; }
.q pre { white-space: pre-wrap; background: #fafafa; padding: .5em; margin: .3em 0; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
</style>
</head>
<body>
<h1>Evaluation run {{ r.id }} <span class="muted">({{ r.status }})</span></h1>
<table class="meta">
<tr><td>model</td><td>{{ r.model }}</td></tr>
<tr><td>adapter</td><td>{{ adapter or "none (base model)" }}</td></tr>
<tr><td>embedder</td><td>{{ r.embedder }}</td></tr>
<tr><td>index size</td><td>{{ r.index_size }} vectors</td></tr>
<tr><td>git commit</td><td>{{ r.git_commit or "not a git checkout" }}</td></tr>
<tr><td>eval set</td><td>{{ r.eval_set }} <span class="muted">sha256 {{ r.eval_set_hash }}</span></td></tr>
<tr><td>judge</td><td>{{ judge or "none: the judged metrics were not scored" }}</td></tr>
<tr><td>questions</td><td>{{ r.questions_total }} ({{ r.speed.answers }} answered)</td></tr>
<tr><td>started / finished</td><td>{{ r.started_at }} / {{ r.finished_at }} ({{ r.duration_s }} s)</td></tr>
</table>

<h2>Metrics</h2>
<svg width="{{ bars.width }}" height="{{ bars.height }}" role="img" aria-label="metric bars">
{% for row in bars.rows %}{% if row.header %}<text x="0" y="{{ row.y }}" font-weight="bold">{{ row.label }}</text>
{% else %}<g><title>{{ row.label }}: {{ row.about }} (n={{ row.n }})</title>
<text x="12" y="{{ row.text_y }}">{{ row.label }}</text>
<rect x="{{ bars.bar_x }}" y="{{ row.y + 4 }}" width="{{ bars.bar_w }}" height="14" fill="#f0f0f0"></rect>
{% if not row.missing %}<rect x="{{ bars.bar_x }}" y="{{ row.y + 4 }}" width="{{ row.width }}" height="14" fill="#2f6db5"></rect>{% endif %}
<text x="{{ bars.bar_x + bars.bar_w + 6 }}" y="{{ row.text_y }}">{{ row.value }}{% if not row.missing %} (n={{ row.n }}){% endif %}</text></g>
{% endif %}{% endfor %}
</svg>

<h2>Speed</h2>
<table>
<tr><th>latency_p50_s</th><th>latency_p95_s</th><th>tokens_per_s</th><th>answers</th><th>answer tokens</th></tr>
<tr><td class="num">{{ fmt(r.speed.latency_p50_s, 2) }}</td><td class="num">{{ fmt(r.speed.latency_p95_s, 2) }}</td>
<td class="num">{{ fmt(r.speed.tokens_per_s, 1) }}</td><td class="num">{{ r.speed.answers }}</td><td class="num">{{ r.speed.completion_tokens }}</td></tr>
</table>

<h2>Gates</h2>
<p class="muted">The latest decision of each gate in this data home: each judges and promotes only its own model, on its own held-out data.</p>
{% set g = r.gates.generator if r.gates else None %}{% set e = r.gates.embedder if r.gates else None %}
<h3>Generator (LoRA)</h3>
{% if g %}<p>{{ g.adapter }}: <span class="{{ '' if g.passed else 'fail' }}">{{ "passed" if g.passed else "failed" }}</span>
against {{ g.against }} on {{ g.examples }} held-out examples ({{ g.at }}); now {{ g.status }}.
{% for reason in g.reasons %}{{ reason }}. {% endfor %}</p>
<table><tr><th>metric</th><th>{{ g.against }}</th><th>{{ g.adapter }}</th><th>95% interval of the difference</th></tr>
{% for m, v in g.metrics.items() %}<tr><td>{{ m }}{% if m == g.main_metric %} (main){% endif %}</td><td class="num">{{ fmt(v.current) }}</td>
<td class="num">{{ fmt(v.candidate) }}</td><td class="num">{% if v.ci95 %}[{{ fmt(v.ci95[0]) }}, {{ fmt(v.ci95[1]) }}]{% endif %}</td></tr>{% endfor %}
</table>{% else %}<p>Never run here (<code>lorebase train</code>).</p>{% endif %}
<h3>Embedder</h3>
{% if e %}<p>{{ e.embedder }}: <span class="{{ '' if e.promoted else 'fail' }}">{{ "promoted" if e.promoted else "not promoted" }}</span>
on {{ e.held_out_pairs }} held-out pairs ({{ e.at }}): {{ e.reason }}.</p>
<table><tr><th>embedder</th><th>MRR@10</th><th>recall@1</th><th>recall@10</th></tr>
{% for label, sc in (("current", e.current), ("candidate", e.candidate)) if sc %}<tr><td>{{ label }}</td><td class="num">{{ fmt(sc.mrr) }}</td>
<td class="num">{{ fmt(sc.recall1) }}</td><td class="num">{{ fmt(sc.recall10) }}</td></tr>{% endfor %}
</table>{% else %}<p>Never run here (<code>lorebase embedder tune</code>).</p>{% endif %}

<h2>Judge failures</h2>
{% if judge %}<p><span class="{{ 'fail' if jf.total else '' }}">judge failures: {{ jf.total }}</span> of {{ jf.attempted }} judged scores
(invalid output, time-outs and refused requests; each leaves one score empty, the run goes on).</p>
{% else %}<p class="muted">judge failures: 0 (no judge in this run).</p>{% endif %}
{% if jf.total %}
<table><tr><th>kind</th><th>count</th></tr>{% for kind, n in jf.by_kind.items() %}<tr><td>{{ kind }}</td><td class="num">{{ n }}</td></tr>{% endfor %}</table>
<table><tr><th>metric</th><th>failures</th></tr>{% for m, n in jf.by_metric.items() %}<tr><td>{{ m }}</td><td class="num">{{ n }}</td></tr>{% endfor %}</table>
<table><tr><th>question</th><th>metric</th><th>kind</th><th>message</th></tr>
{% for e in jf.examples %}<tr><td>{{ e.question }}</td><td>{{ e.metric }}</td><td>{{ e.kind }}</td><td>{{ e.message }}</td></tr>{% endfor %}</table>
{% endif %}
{% if me.total %}<p class="fail">errors in the metrics without an LLM: {{ me.total }}</p>
<table><tr><th>question</th><th>metric</th><th>message</th></tr>
{% for e in me.examples %}<tr><td>{{ e.question }}</td><td>{{ e.metric }}</td><td>{{ e.message }}</td></tr>{% endfor %}</table>{% endif %}

<h2>By source kind</h2>
<table>
<tr><th>metric</th>{% for kd in kinds.kinds %}<th>{{ kd }} <span class="muted">({{ kinds.sizes[loop.index0] }})</span></th>{% endfor %}<th>all</th></tr>
{% for row in kinds.rows %}<tr><td>{{ row.name }}</td>{% for c in row.cells %}<td class="num cell"><span class="fill" style="width: {{ c.pct }}%"></span>{{ c.value }}</td>{% endfor %}<td class="num">{{ row.overall }}</td></tr>
{% endfor %}
</table>

<h2>Trend</h2>
{% if trend %}
<p class="muted">Runs on this eval set (same sha256), oldest first.</p>
<svg width="{{ trend.width }}" height="{{ trend.height }}" role="img" aria-label="trend of the main metrics">
{% for g in trend.grid %}<line x1="{{ trend.x0 }}" x2="{{ trend.x1 }}" y1="{{ g.y }}" y2="{{ g.y }}" stroke="#e6e6e6"></line>
<text x="4" y="{{ g.y + 4 }}">{{ g.label }}</text>{% endfor %}
{% for t in trend.ticks %}<text x="{{ t.x - 8 }}" y="{{ trend.axis_y + 16 }}">{{ t.label }}</text>{% endfor %}
{% for s in trend.series %}<path d="{{ s.path }}" fill="none" stroke="{{ s.color }}" stroke-width="2"></path>
{% for p in s.points %}<circle cx="{{ p[0] }}" cy="{{ p[1] }}" r="3" fill="{{ s.color }}"><title>{{ s.name }} run #{{ p[2] }}: {{ p[3] }}</title></circle>{% endfor %}
<text x="{{ trend.x0 + loop.index0 * 125 }}" y="{{ trend.legend_y }}" fill="{{ s.color }}">&#9632; {{ s.name }}</text>
{% endfor %}
</svg>
{% else %}<p class="muted">The first finished run on this eval set: no trend yet.</p>{% endif %}

<h2>Summaries</h2>
{% if r.summaries["items"] %}
<table><tr><th>lecture</th><th>summary_rouge1</th><th>summary_rougeL</th><th>seconds</th><th></th></tr>
{% for s in r.summaries["items"] %}<tr><td>{{ s.title }}</td><td class="num">{{ fmt(s.summary_rouge1) }}</td><td class="num">{{ fmt(s.summary_rougeL) }}</td>
<td class="num">{{ fmt(s.latency_s, 1) }}</td><td>{% if s.error %}<span class="fail">{{ s.error }}</span>{% else %}<details><summary>summary</summary><pre>{{ s.summary }}</pre></details>{% endif %}</td></tr>{% endfor %}
</table>
{% else %}<p class="muted">No summaries scored{% if r.summaries.skipped %}: {{ r.summaries.skipped }}{% endif %}.</p>{% endif %}

<h2>Worst-scored questions</h2>
{% for q in worst %}<div class="q">
<p><b>{{ q.id }}</b> <span class="muted">{{ q.kind }}{% if q.category %}, {{ q.category }}{% endif %}</span> mean score {{ q.score }}</p>
<p><b>Question:</b> {{ q.question }}</p>
{% if q.reference %}<p><b>Reference:</b> {{ q.reference }}</p>{% endif %}
<p><b>Answer:</b></p><pre>{{ q.answer }}</pre>
<p><b>Sources:</b></p><ol>{% for s in q.source_list %}<li>[{{ s.id }}] {% if s.href %}<a href="{{ s.href }}" rel="noreferrer noopener">{{ s.label }}</a>{% else %}{{ s.label }} <span class="muted">{{ s.uri }}</span>{% endif %}</li>{% endfor %}</ol>
<p class="muted">{% for s in q.score_list %}{{ s.name }} {{ s.value }}{% if not loop.last %} · {% endif %}{% endfor %}</p>
{% for m, f in q.failures.items() %}<p class="fail">{{ m }}: {{ f.kind }}: {{ f.message }}</p>{% endfor %}
</div>{% else %}<p class="muted">No scored questions.</p>{% endfor %}

<h2>All questions</h2>
<table><tr><th>id</th><th>kind</th><th>question</th><th>mean score</th><th>judge failures</th><th>seconds</th></tr>
{% for q in questions %}<tr><td>{{ q.id }}</td><td>{{ q.kind }}</td><td>{{ q.question }}</td><td class="num">{{ q.score }}</td>
<td class="num">{{ q.n_failures }}</td><td class="num">{{ q.latency }}</td></tr>{% endfor %}
</table>

{% if r.problems %}<h2>Problems</h2><ul>{% for p in r.problems %}<li>{{ p.question }} ({{ p.where }}): {{ p.error }}</li>{% endfor %}</ul>{% endif %}
</body>
</html>
"""

_DEFAULTS: dict[str, Any] = {
    "status": "", "model": "", "embedder": "", "index_size": 0, "git_commit": None, "eval_set": "", "eval_set_hash": "",
    "questions_total": 0, "speed": {"latency_p50_s": None, "latency_p95_s": None, "tokens_per_s": None, "answers": 0,
                                    "completion_tokens": 0},
    "summaries": {"items": [], "skipped": None}, "gates": {"generator": None, "embedder": None}, "started_at": "", "finished_at": "", "duration_s": "", "problems": [],
}

_ENV = Environment(autoescape=True, trim_blocks=False, lstrip_blocks=False)
_TEMPLATE = _ENV.from_string(TEMPLATE)


def render(report: dict[str, Any], earlier: Sequence[dict[str, Any]] = ()) -> str:
    """The HTML page of ``report`` (as the runner writes it), with ``earlier`` runs' records for the trend."""
    report = {**_DEFAULTS, **report}
    questions, worst = _questions(report)
    adapter = report.get("adapter")
    judge = report.get("judge")
    empty_failures = {"total": 0, "attempted": 0, "by_kind": {}, "by_metric": {}, "examples": []}
    return _TEMPLATE.render(
        r=report,
        adapter=adapter.get("name") if isinstance(adapter, dict) else adapter,
        judge=judge.get("name") if isinstance(judge, dict) else judge,
        bars=_bars(report),
        trend=_trend(report, earlier),
        kinds=_by_kind(report),
        jf=report.get("judge_failures") or empty_failures,
        me=report.get("metric_errors") or empty_failures,
        questions=questions,
        worst=worst,
        fmt=_fmt,
    )


def render_index(runs: Sequence[dict[str, Any]]) -> str:
    """A plain list of runs, linking each run's report (for the UI's link)."""
    return _INDEX.render(runs=runs, cols=("faithfulness", "answer_relevancy", "hit@5", "mrr", "rouge_score"), fmt=_fmt)


_INDEX = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>lorebase eval runs</title>
<style>body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; } td.num { text-align: right; }</style>
</head><body><h1>Evaluation runs</h1>
{% if runs %}<table><tr><th>run</th><th>status</th><th>started</th><th>model</th><th>adapter</th><th>eval set</th><th>judge</th>
{% for c in cols %}<th>{{ c }}</th>{% endfor %}<th>judge failures</th></tr>
{% for r in runs %}<tr><td><a href="runs/{{ r.id }}?format=html">#{{ r.id }}</a></td><td>{{ r.status }}</td><td>{{ r.started_at }}</td>
<td>{{ r.model }}</td><td>{{ r.adapter or "" }}</td><td>{{ r.eval_set }}</td><td>{{ r.judge or "none" }}</td>
{% for c in cols %}<td class="num">{{ fmt((r.metrics or {}).get(c)) }}</td>{% endfor %}<td class="num">{{ (r.metrics or {}).get("judge_failures", "") }}</td></tr>{% endfor %}
</table>{% else %}<p>No evaluation runs yet: run <code>lorebase eval</code>.</p>{% endif %}
</body></html>
""")
