"""``recforge rollout watch``: run the rollout controller against an InferenceService.

    recforge rollout watch --inference-service recforge-ranker --namespace recforge \\
        --prometheus-url http://prometheus-operated.monitoring.svc:9090 --steps 10 25 50

``--once`` decides once, prints the decision as JSON and exits (0: idle/hold/step/promote,
1: rollback, 2: missing InferenceService or a bad flag). Without it, it reconciles every
``--interval-s`` until SIGTERM and answers ``GET /healthz`` on ``--health-port`` (200 while
reconciles succeed).
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

from serving.canary import CanaryConfig
from serving.controller import RolloutConfig, RolloutController, log
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
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[10, 25, 50],
        help="canary percent after each passing analysis; promote after the last",
    )
    parser.add_argument("--interval-s", type=float, default=60.0, help="seconds between decisions")
    parser.add_argument("--window-s", type=int, default=3600, help="longest analysis window")
    default = CanaryConfig()
    parser.add_argument("--alpha", type=float, default=default.alpha)
    parser.add_argument("--max-error-rate", type=float, default=default.max_error_rate)
    parser.add_argument("--max-p99-ms", type=float, default=default.max_p99_ms)
    parser.add_argument("--min-requests-per-arm", type=int, default=default.min_requests_per_arm)
    parser.add_argument("--min-relative-ctr", type=float, default=default.min_relative_ctr)
    parser.add_argument("--min-relative-cvr", type=float, default=default.min_relative_cvr)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)")
    parser.add_argument("--health-port", type=int, default=0, help="serve GET /healthz here (0: off)")
    parser.add_argument("--once", action="store_true", help="decide once and exit")


def build_controller(args: argparse.Namespace) -> RolloutController:
    """The controller the flags describe; a bad flag raises ValueError naming it."""
    rule = CanaryConfig(
        alpha=args.alpha,
        max_error_rate=args.max_error_rate,
        max_p99_ms=args.max_p99_ms,
        min_requests_per_arm=args.min_requests_per_arm,
        min_relative_ctr=args.min_relative_ctr,
        min_relative_cvr=args.min_relative_cvr,
    )
    config = RolloutConfig(
        inference_service=args.inference_service,
        namespace=args.namespace,
        steps=tuple(args.steps),
        interval_s=args.interval_s,
        window_s=args.window_s,
        rule=rule,
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
        return {"missing": 2, "rollback": 1}.get(decision.action, 0)
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
