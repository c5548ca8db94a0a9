"""Serving: KServe predictor and Feast transformer, the local canary router and rule, and the
cluster InferenceService.

``protocol`` (V1/V2 requests and responses) · ``ranking`` (score blend) · ``feature_source``
(Feast online lookups) · ``predictor`` / ``transformer`` (``kserve.Model``) · ``server``
(``python -m serving.server``) · ``process`` (servers as child processes) · ``router`` (sticky
weighted split) · ``metrics`` (per-arm counters) · ``canary`` (promote / roll back rule) ·
``inference_service`` (KServe manifest).
"""
