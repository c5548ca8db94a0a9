"""Serving: KServe predictor and Feast transformer, the local canary router and rule, and the
cluster InferenceService.

``protocol`` (V1/V2 requests and responses) · ``ranking`` (score blend) · ``feature_source``
(online features: item table in memory, user rows per request, bounded store calls) ·
``predictor`` / ``transformer`` (``kserve.Model``) · ``server`` (``python -m serving.server``) ·
``process`` (servers as child processes) · ``router`` (sticky weighted split, retries, version
pins) · ``shadow`` (mirroring and comparison) · ``metrics`` / ``router_metrics`` /
``prometheus_metrics`` (per-arm and per-version counters) · ``analysis`` (sequential tests, SRM,
guardrails, stepping policy) · ``canary`` (the local canary's looks) · ``controller`` (the
cluster rollout) · ``loadgen`` (open-loop load) · ``inference_service`` (KServe manifest).
"""

# prometheus_client before Feast: `import feast` (0.67) points prometheus_client at a multiprocess
# directory of its own, and whichever imports prometheus_client first decides the mode for the
# whole process; in that mode same-named series of two registries (two routers) share one value.
import prometheus_client  # noqa: F401
