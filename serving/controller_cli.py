"""``recforge rollout watch``: run the rollout controller against an InferenceService.

    recforge rollout watch --inference-service recforge-ranker --namespace recforge \\
        --prometheus-url http://prometheus-operated.monitoring.svc:9090 --steps 10 25 50

Each look is one step of the local canary's analysis (``serving.analysis.evaluate``) on the
arms' per-user statistics in Prometheus. ``--once`` decides once, prints the decision as JSON and
exits (0: idle/hold/continue/step/promote, 1: rollback or inconclusive, 2: missing
InferenceService or a bad flag). Without it, it reconciles every ``--interval-s`` until SIGTERM
and answers ``GET /healthz`` on ``--health-port`` (200 while reconciles succeed).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serving.analysis import GuardrailLimits
from serving.controller import RolloutConfig, RolloutController, cluster_policy, log
from serving.k8s_inference_service import InferenceServiceClient, api_client
from serving.prometheus_source import PrometheusSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inference-service", required=True, help="InferenceService name")
    parser.add_argument("--namespace", required=True, help="its namespace")
    parser.add_argument(
        "--prometheus-url", required=True, help="e.g. http://prometheus-operated.monitoring.svc:9090"
    )
    parser.add_argument(
        "--prometheus-selector", help='extra PromQL label matchers (default: namespace="<namespace>")'
    )
    default = cluster_policy()
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[round(w * 100) for w in default.steps],
        help="canary percent of each step; promote from the last",
    )
    parser.add_argument("--interval-s", type=float, default=60.0, help="seconds between looks")
    parser.add_argument("--alpha", type=float, default=default.alpha, help="level of the whole rollout")
    parser.add_argument(
        "--planned-users",
        type=int,
        default=default.planned_users,
        help="users of both arms where the confidence sequences are tightest",
    )
    parser.add_argument(
        "--planned-effect",
        type=float,
        default=None,
        help="smallest relative change worth detecting (e.g. 0.05): test with the two-point mixture "
        "at that effect, which decides sooner there but never resolves below half of it",
    )
    parser.add_argument("--srm-alpha", type=float, default=default.srm_alpha)
    parser.add_argument("--max-error-rate", type=float, default=default.guardrails.max_error_rate)
    parser.add_argument("--max-p99-ms", type=float, default=default.guardrails.max_p99_ms)
    parser.add_argument(
        "--min-requests-per-arm",
        type=int,
        default=default.guardrails.min_requests,
        help="canary requests in a step before its guardrails are judged",
    )
    parser.add_argument(
        "--min-relative-ctr",
        type=float,
        default=1 - dict(default.metrics)["ctr"],
        help="canary CTR / primary CTR below which it is worse (1.0: no tolerated drop)",
    )
    parser.add_argument("--min-relative-cvr", type=float, default=1 - dict(default.metrics)["cvr"])
    parser.add_argument("--min-canary-users-per-step", type=int, default=default.min_canary_users_per_step)
    parser.add_argument("--min-seconds-per-step", type=float, default=default.min_seconds_per_step)
    parser.add_argument(
        "--max-duration-s",
        type=float,
        default=default.max_duration_s,
        help="inconclusive (back to the primary) after this long",
    )
    parser.add_argument(
        "--max-state-skew-s",
        type=float,
        default=300.0,
        help="most seconds between the arms' per-user state starts",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)")
    parser.add_argument("--health-port", type=int, default=0, help="serve GET /healthz here (0: off)")
    parser.add_argument("--once", action="store_true", help="decide once and exit")


def build_controller(args: argparse.Namespace) -> RolloutController:
    """The controller the flags describe; a bad flag raises ValueError naming it."""
    steps = list(args.steps)
    if not all(1 <= p <= 99 for p in steps) or steps != sorted(set(steps)):
        raise ValueError(f"--steps: expected increasing canary percents 1-99, e.g. 10 25 50; got {steps}")
    for flag in ("min_relative_ctr", "min_relative_cvr"):
        value = getattr(args, flag)
        if not 0 < value <= 1:
            name = "--" + flag.replace("_", "-")
            raise ValueError(f"{name}: expected a ratio in (0, 1] (1.0: no tolerated drop), got {value}")
    policy = cluster_policy(
        steps=tuple(p / 100 for p in steps),
        min_canary_users_per_step=args.min_canary_users_per_step,
        min_seconds_per_step=args.min_seconds_per_step,
        max_duration_s=args.max_duration_s,
        metrics=(("ctr", 1 - args.min_relative_ctr), ("cvr", 1 - args.min_relative_cvr)),
        alpha=args.alpha,
        planned_users=args.planned_users,
        planned_effect=args.planned_effect,
        srm_alpha=args.srm_alpha,
        guardrails=GuardrailLimits(
            max_error_rate=args.max_error_rate,
            max_p99_ms=args.max_p99_ms,
            min_requests=args.min_requests_per_arm,
        ),
    )
    config = RolloutConfig(
        inference_service=args.inference_service,
        namespace=args.namespace,
        policy=policy,
        interval_s=args.interval_s,
        max_state_skew_s=args.max_state_skew_s,
    )
    selector = (
        args.prometheus_selector if args.prometheus_selector is not None else f'namespace="{args.namespace}"'
    )
    client = InferenceServiceClient(api_client(args.kubeconfig))
    return RolloutController(config, client, PrometheusSource(args.prometheus_url, selector))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        controller = build_controller(args)
    except ValueError as error:
        print(f"recforge rollout watch: {error}", file=sys.stderr)
        return 2
    if args.once:
        decision = controller.reconcile_once()
        print(json.dumps(decision.to_dict(), default=str))
        return {"missing": 2, "rollback": 1, "inconclusive": 1}.get(decision.action, 0)
    return _watch(controller, args.health_port)


def _watch(controller: RolloutController, health_port: int) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last_success = [time.monotonic()]
    server = _health_server(
        health_port, lambda: time.monotonic() - last_success[0] < 3 * controller.config.interval_s
    )
    try:
        while not stop.is_set():
            try:
                controller.reconcile_once()
                last_success[0] = time.monotonic()
            except Exception as error:  # noqa: BLE001 - keep watching; /healthz turns red if it persists
                log.exception("reconcile failed: %s", error)
            stop.wait(controller.config.interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.shutdown()
    return 0


def _health_server(port: int, healthy) -> ThreadingHTTPServer | None:
    if not port:
        return None

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/healthz" and healthy()
            self.send_response(200 if ok else 503 if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok\n" if ok else b"unhealthy\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
