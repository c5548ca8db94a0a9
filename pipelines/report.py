"""The run report: `report.json` for machines and `report.html` (with plots) for people."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipelines.config import RunConfig  # noqa: E402

METRIC_KEYS = ("auc", "gauc", "logloss")
ROLE_ORDER = ("candidate", "baseline", "popularity")
ROLE_COLOURS = {"candidate": "#1f77b4", "baseline": "#ff7f0e", "popularity": "#bbbbbb"}


def build_report(
    config: RunConfig,
    *,
    data_checks: dict,
    evaluation: dict,
    canary: dict,
    candidate_dir: Path,
    baseline_dir: Path,
    timings: dict[str, float | None],
) -> dict[str, Any]:
    metrics = evaluation["metrics"]
    report = {
        "profile": config.profile,
        "data_checks": {
            "success": data_checks["success"],
            "failed_expectations": data_checks.get("failed_expectations", []),
        },
        "metrics": {
            role: {task: {k: values.get(k) for k in METRIC_KEYS} for task, values in per.items()}
            for role, per in metrics.items()
        },
        "blessed": evaluation["blessed"],
        "blessing_reasons": evaluation.get("reasons", []),
        "models": {
            "candidate": evaluation.get("candidate_version"),
            "baseline": evaluation.get("baseline_version"),
        },
        "training": {
            "candidate": _training_summary(candidate_dir),
            "baseline": _training_summary(baseline_dir),
        },
        "canary": canary,
        "timings_s": {step: seconds for step, seconds in timings.items() if seconds is not None},
        "config": json.loads(config.to_json()),
    }
    return _finite(report)


def render_html(report: dict[str, Any]) -> str:
    sections = [
        _section("Data checks", _data_check_table(report["data_checks"])),
        _section("Holdout metrics", _metrics_table(report["metrics"]) + _img(_metrics_plot(report))),
        _section("Blessing", _blessing(report)),
        _section("Training curves", _img(_training_plot(report["training"]))),
        _section("Canary", _canary_table(report["canary"]) + _img(_canary_plot(report["canary"]))
                 + _img(_sequence_plot(report["canary"]))),
        _section("Timings (s)", _table(["step", "seconds"],
                                       [[k, f"{v:.1f}"] for k, v in report["timings_s"].items()])),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>RecForge run report</title>"
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "th{background:#f3f3f3}.ok{color:#1a7f37}.bad{color:#c62828}</style></head><body>"
        f"<h1>RecForge run report <small>({html.escape(report['profile'])} profile)</small></h1>"
        + "".join(sections)
        + "</body></html>"
    )


def _training_summary(artifact_dir: Path) -> dict[str, Any]:
    metrics_file = Path(artifact_dir) / "metrics.json"
    if not metrics_file.is_file():
        return {}
    metrics = json.loads(metrics_file.read_text())
    return {
        "history": metrics.get("history", []),
        "best_epoch": metrics.get("best_epoch"),
        "train_rows": metrics.get("train_rows"),
        "samples_per_second": metrics.get("samples_per_second"),
    }


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _data_check_table(checks: dict) -> str:
    status = "<p class='ok'>all critical expectations passed</p>" if checks["success"] else (
        "<p class='bad'>critical expectations failed</p>"
    )
    failed = checks["failed_expectations"]
    rows = [[f.get("suite"), f.get("expectation"), f.get("column"), f.get("severity")]
            for f in failed]
    return status + (_table(["suite", "expectation", "column", "severity"], rows) if rows else "") + (
        "<p>Great Expectations Data Docs: <code>data_docs/</code> next to this report.</p>"
    )


def _metrics_table(metrics: dict) -> str:
    rows = []
    for role, per_task in metrics.items():
        for task, values in per_task.items():
            rows.append([role, task, *(_fmt(values.get(k)) for k in METRIC_KEYS)])
    return _table(["model", "task", *METRIC_KEYS], rows)


def _blessing(report: dict) -> str:
    if report["blessed"]:
        return "<p class='ok'>The candidate is blessed.</p>"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report["blessing_reasons"])
    return f"<p class='bad'>The candidate is not blessed:</p><ul>{reasons}</ul>"


def _canary_table(canary: dict) -> str:
    arms = canary.get("arms", {})
    keys = ("requests", "ctr", "cvr", "p50_ms", "p99_ms", "errors")
    rows = [[arm, *(_fmt(stats.get(k)) for k in keys)] for arm, stats in arms.items()]
    decision = html.escape(str(canary.get("decision")))
    reason = html.escape("; ".join(canary.get("reasons") or [canary.get("reason", "")]))
    return f"<p>Decision: <b>{decision}</b> {reason}</p>" + (
        _table(["arm", *keys], rows) if rows else ""
    )


def _img(png: bytes | None) -> str:
    if png is None:
        return ""
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def _metrics_plot(report: dict) -> bytes | None:
    metrics = report["metrics"]
    roles = sorted(metrics, key=lambda role: ROLE_ORDER.index(role) if role in ROLE_ORDER else 99)
    tasks = sorted({task for per in metrics.values() for task in per})
    if not tasks:
        return None
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3))
    for axis, task in zip(list(getattr(axes, "flat", [axes])), tasks, strict=True):
        values = [metrics[role].get(task, {}).get("auc") or 0.0 for role in roles]
        axis.bar(roles, values, color=[ROLE_COLOURS.get(role, "#dddddd") for role in roles])
        axis.set_ylim(min(0.5, *values), max(values) + 0.02)
        axis.set_title(f"{task}: holdout AUC")
    return _png(figure)


def _training_plot(training: dict) -> bytes | None:
    runs = {role: t.get("history") for role, t in training.items() if t.get("history")}
    if not runs:
        return None
    figure, (loss_axis, auc_axis) = plt.subplots(1, 2, figsize=(9, 3))
    for role, history in runs.items():
        epochs = [h["epoch"] for h in history]
        loss_axis.plot(epochs, [h["train_loss"] for h in history], marker="o", label=role)
        for task in history[0]["valid_auc"]:
            auc_axis.plot(epochs, [h["valid_auc"][task] for h in history], marker="o",
                          label=f"{role} {task}")
    loss_axis.set(title="training loss", xlabel="epoch")
    auc_axis.set(title="validation AUC", xlabel="epoch")
    for axis in (loss_axis, auc_axis):
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    loss_axis.legend()
    auc_axis.legend(fontsize=7)
    return _png(figure)


def _canary_plot(canary: dict) -> bytes | None:
    arms = canary.get("arms", {})
    if not arms:
        return None
    names = list(arms)
    figure, axes = plt.subplots(1, 3, figsize=(10, 3))
    for axis, (key, title) in zip(axes, [("ctr", "CTR"), ("cvr", "CVR"), ("p99_ms", "p99 ms")], strict=True):
        axis.bar(names, [arms[name].get(key) or 0.0 for name in names],
                 color=["#1f77b4", "#ff7f0e"][: len(names)])
        axis.set_title(title)
    return _png(figure)


def _sequence_plot(canary: dict) -> bytes | None:
    """Each metric's canary-vs-primary estimate with its anytime-valid confidence sequence."""
    analysis = canary.get("analysis") or {}
    trail = analysis.get("trail") or []
    difference = analysis.get("difference", "relative")
    metrics = sorted({name for look in trail for name in look.get("metrics", {})})
    if not metrics:
        return None
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3), squeeze=False)
    for axis, name in zip(axes[0], metrics, strict=True):
        looks = [look for look in trail if name in look.get("metrics", {})]
        requests = [look["requests"] for look in looks]
        estimate = [look["metrics"][name]["estimate"] for look in looks]
        low = [(look["metrics"][name]["interval"] or [None, None])[0] for look in looks]
        high = [(look["metrics"][name]["interval"] or [None, None])[1] for look in looks]
        axis.fill_between(requests, _floats(low), _floats(high), alpha=0.25,
                          label="confidence sequence")
        axis.plot(requests, _floats(estimate), marker=".", label="estimate")
        axis.axhline(0.0, color="#888888", linewidth=0.8)
        axis.set(title=f"{name}: canary vs primary", xlabel="requests",
                 ylabel=f"{difference} difference")
        axis.legend(fontsize=7)
    return _png(figure)


def _floats(values: list) -> list[float]:
    return [float("nan") if value is None else float(value) for value in values]
