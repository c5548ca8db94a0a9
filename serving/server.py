"""Run a real ``kserve.ModelServer`` for the ranker (predictor) or the Feast transformer.

KServe 0.21 defaults this module works around, each verified in its source:

- it parses ``sys.argv`` at import: :mod:`serving._kserve` imports it with a bare argv, and the
  server runs with a bare argv so spawned workers do not re-read our flags;
- its REST server binds 0.0.0.0 and gRPC starts on 8081: we bind ``host`` (loopback by default)
  and turn gRPC off;
- it logs four lines per request (uvicorn access, two timing lines, one latency line) and a
  traceback per HTTP 400: those loggers are raised to WARNING, latency logging is off and a 400
  is one line;
- malformed V2 bodies fail FastAPI validation with 422 or ``{"detail": ...}``: they are answered
  400 with an ``error`` naming the field;
  features looked up for another model version are answered 409 naming both versions;
- full garbage collections over Feast's many objects cost 100+ ms pauses at p99: everything
  alive after loading is frozen out of the collector (``gc.freeze``);
- its REST app times every request in a middleware (two ``getrusage`` calls, a second route
  match to name the metric, two trace lines formatted even though that logger is silenced):
  about a tenth of the event loop's time under load, for log lines nobody sees. The middleware
  is not added.

With ``workers > 1`` KServe pickles the model into spawned worker processes: the predictor then
travels as its artifact path, each worker repeats this set-up and loads the artifact in the
background (KServe replaces a worker that does not answer its liveness ping within 5 s, so a
worker must start fast: this module imports torch only when it serves).

Command line (also what the cluster containers run)::

    python -m serving.server --artifact DIR --port 8080 [--feature-repo DIR]
    python -m serving.server --transformer --feature-repo DIR --predictor-host HOST:PORT --port N \
        [--model-version V | --artifact DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from serving._kserve import kserve
from serving.feature_source import DEFAULT_ONLINE, OnlineFeaturesConfig
from serving.predictor import RankingPredictor, use_one_intra_op_thread
from serving.protocol import FeatureVersionMismatch, PredictorUnavailable, RequestLimits
from serving.ranking import RankingConfig

DEFAULT_MODEL_NAME = "ranker"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def serve(
    artifact_dir: str | Path,
    *,
    feature_repo: str | Path | None = None,
    host: str = DEFAULT_HOST,
    http_port: int = DEFAULT_PORT,
    model_name: str = DEFAULT_MODEL_NAME,
    workers: int = 1,
    max_items: int = 500,
    conversion_weight: float = 1.0,
    online: OnlineFeaturesConfig = DEFAULT_ONLINE,
) -> None:
    """Serve a model artifact (V1 and V2) until SIGTERM/SIGINT.

    Features come from Feast in-process when ``feature_repo`` is given, else from the request
    (a transformer forwards them) or the model's defaults.
    """
    _check_server_args(host, http_port, model_name, workers)
    use_one_intra_op_thread()
    predictor = RankingPredictor(
        model_name,
        artifact_dir,
        feature_repo=feature_repo,
        limits=RequestLimits(max_items=max_items),
        ranking=RankingConfig(conversion_weight=conversion_weight),
        online=online,
        worker_init=configure_server_process,
    )
    predictor.load()
    _run(predictor, host=host, http_port=http_port, workers=workers, predictor_host=None)


def serve_transformer(
    *,
    feature_repo: str | Path,
    predictor_host: str,
    host: str = DEFAULT_HOST,
    http_port: int = DEFAULT_PORT,
    model_name: str = DEFAULT_MODEL_NAME,
    max_items: int = 500,
    model_version: str | None = None,
    online: OnlineFeaturesConfig = DEFAULT_ONLINE,
) -> None:
    """Serve the Feast transformer in front of the predictor at ``predictor_host`` (host:port);
    with ``model_version`` it forwards only to a predictor of that version (else HTTP 409)."""
    from serving.transformer import FeastTransformer

    _check_server_args(host, http_port, model_name, workers=1)
    if not predictor_host or "/" in predictor_host:
        raise ValueError(
            f"predictor_host: expected host:port of the predictor, e.g. 127.0.0.1:8081, "
            f"got {predictor_host!r}"
        )
    transformer = FeastTransformer(
        model_name,
        feature_repo,
        model_version=model_version,
        limits=RequestLimits(max_items=max_items),
        online=online,
    )
    transformer.load()
    _run(transformer, host=host, http_port=http_port, workers=1, predictor_host=predictor_host)


def _check_server_args(host: str, http_port: int, model_name: str, workers: int) -> None:
    if not isinstance(host, str) or not host:
        raise ValueError(f"host: expected an address to bind, e.g. 127.0.0.1; got {host!r}")
    if isinstance(http_port, bool) or not isinstance(http_port, int) or not 1 <= http_port <= 65535:
        raise ValueError(f"http_port: expected an integer 1-65535, got {http_port!r}")
    if not model_name or "/" in model_name or ":" in model_name:
        raise ValueError(f"model_name: expected a name without '/' or ':', e.g. ranker; got {model_name!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")


class _BoundModelServer(kserve.ModelServer):
    """A ModelServer whose REST server binds ``host`` instead of KServe's hard-coded 0.0.0.0."""

    def __init__(self, host: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._bind_host = host

    def setup_event_loop(self) -> None:
        # ModelServer.start() builds the REST server, then calls this, then starts serving: the
        # one point where the uvicorn config exists but no socket is bound yet.
        rest = self._rest_server or self._rest_multiprocess_server._rest_server
        rest.config.host = self._bind_host
        super().setup_event_loop()


def _run(model: kserve.Model, *, host: str, http_port: int, workers: int, predictor_host: str | None) -> None:
    configure_server_process()
    server = _BoundModelServer(
        host,
        http_port=http_port,
        workers=workers,
        enable_grpc=False,
        enable_latency_logging=False,
        predictor_config=kserve.PredictorConfig(predictor_host=predictor_host, predictor_protocol="v1"),
    )
    with _bare_argv():
        server.start([model])


def configure_server_process() -> None:
    """Per-process serving set-up, run after the model is loaded (in every worker, too)."""
    # A CPU-bound background thread (the item-table refresh) holds the GIL for 5 ms at a time by
    # default, and a request waits that long at every I/O it makes: 200 ms stalls measured. At
    # 0.5 ms a request's feature lookup stayed under 10 ms while the table reloaded.
    sys.setswitchinterval(0.0005)
    _quiet_request_logs()
    _skip_request_timing()
    _answer_malformed_v2_with_400()
    _answer_version_mismatch_409_and_unavailable_503()
    gc.collect()
    gc.freeze()


def _quiet_request_logs() -> None:
    from kserve.logging import configure_logging

    configure_logging()
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    kserve_logger = logging.getLogger("kserve")
    if _one_line_for_bad_requests not in kserve_logger.filters:
        kserve_logger.addFilter(_one_line_for_bad_requests)
    # our own lines (item-table refreshes, store outages) in KServe's format
    serving_logger = logging.getLogger("serving")
    serving_logger.setLevel(logging.INFO)
    serving_logger.handlers = list(kserve_logger.handlers)
    serving_logger.propagate = not serving_logger.handlers
    # KServe answers with FastAPI's deprecated ORJSONResponse: one warning per request otherwise.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def _skip_request_timing() -> None:
    """KServe's REST server adds only its timing middleware (and an access logger when given an
    access log format, which we never pass): add none."""
    from kserve.protocol.rest.server import RESTServer

    RESTServer._add_middlewares = _no_middlewares


def _no_middlewares(_server: object, _app: object) -> None:
    return None


def _one_line_for_bad_requests(record: logging.LogRecord) -> bool:
    """KServe logs a full traceback for every HTTP 400; keep the message, drop the traceback."""
    if record.funcName == "invalid_input_handler" and record.exc_info:
        record.msg, record.args = "HTTP 400: %s", (record.exc_info[1],)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
    return True


def _answer_malformed_v2_with_400() -> None:
    from fastapi import Request, Response
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve.model_server import app
    from starlette.exceptions import HTTPException

    async def handler(_request: object, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = (
            f"{where or 'request body'}: {first.get('msg', 'invalid')}; a V2 request is "
            '{"inputs": [{"name": ..., "shape": [...], "datatype": ..., "data": [...]}]}'
        )
        return JSONResponse(status_code=400, content={"error": message})

    async def unparsable_body(request: Request, error: HTTPException) -> Response:
        # FastAPI's own refusal of a V2 body it cannot decode (not UTF-8, nested too deep)
        if error.status_code == 400 and error.detail == "There was an error parsing the body":
            message = "request body: not valid JSON (could not be parsed); send a UTF-8 JSON V2 request"
            return JSONResponse(status_code=400, content={"error": message})
        return await http_exception_handler(request, error)

    app.add_exception_handler(RequestValidationError, handler)
    app.add_exception_handler(HTTPException, unparsable_body)


def _answer_version_mismatch_409_and_unavailable_503() -> None:
    from fastapi.responses import JSONResponse
    from kserve.model_server import app

    async def handler(_request: object, error: FeatureVersionMismatch) -> JSONResponse:
        return JSONResponse(status_code=409, content={"error": str(error)})

    app.add_exception_handler(FeatureVersionMismatch, handler)

    async def unavailable(_request: object, error: PredictorUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(error)})

    app.add_exception_handler(PredictorUnavailable, unavailable)


@contextlib.contextmanager
def _bare_argv() -> Iterator[None]:
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving flags, shared by ``python -m serving.server`` and ``recforge serve``.

    The underscore spellings are the ones KServe's controller adds to a transformer container.
    """
    parser.add_argument("--artifact", type=Path, help="model artifact directory (predictor)")
    parser.add_argument("--feature-repo", type=Path, help="Feast repo for online features")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default loopback)")
    parser.add_argument(
        "--port",
        "--http-port",
        "--http_port",
        dest="http_port",
        type=int,
        default=DEFAULT_PORT,
        help="HTTP port",
    )
    parser.add_argument(
        "--model-name",
        "--model_name",
        dest="model_name",
        default=DEFAULT_MODEL_NAME,
        help="name in /v1/models/<name>:predict",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (predictor)")
    parser.add_argument("--max-items", type=int, default=500, help="most candidates per request")
    parser.add_argument(
        "--conversion-weight", type=float, default=1.0, help="w in the ranking score pCTR + w * pCTCVR"
    )
    parser.add_argument(
        "--transformer", action="store_true", help="run the Feast transformer instead of the predictor"
    )
    parser.add_argument(
        "--model-version",
        help="transformer: the model version its features are for (default: the --artifact's)",
    )
    parser.add_argument(
        "--feature-timeout",
        type=float,
        default=DEFAULT_ONLINE.timeout_s,
        help="seconds a request waits for the online store before ranking with defaults",
    )
    parser.add_argument(
        "--item-refresh",
        type=float,
        default=DEFAULT_ONLINE.item_refresh_s,
        help="seconds between refreshes of the in-memory item features (their staleness bound)",
    )
    parser.add_argument(
        "--prepared-items",
        type=int,
        default=DEFAULT_ONLINE.max_prepared_items,
        help="predictor: item tables up to this many items are prepared for the model at each "
        "refresh (~3 KB an item; 0: never)",
    )
    parser.add_argument(
        "--predictor-host",
        "--predictor_host",
        dest="predictor_host",
        help="host:port of the predictor (transformer)",
    )


def run_from_args(args: argparse.Namespace) -> None:
    """Start the server the parsed flags describe; a bad flag raises ValueError naming it."""
    online = _online_config(args)
    if args.transformer:
        if args.feature_repo is None or args.predictor_host is None:
            raise ValueError("--transformer needs --feature-repo DIR and --predictor-host HOST:PORT")
        serve_transformer(
            feature_repo=args.feature_repo,
            predictor_host=args.predictor_host,
            host=args.host,
            http_port=args.http_port,
            model_name=args.model_name,
            max_items=args.max_items,
            model_version=args.model_version or _artifact_version(args.artifact),
            online=online,
        )
        return
    if args.artifact is None:
        raise ValueError("--artifact: required, the model artifact directory to serve")
    serve(
        args.artifact,
        feature_repo=args.feature_repo,
        host=args.host,
        http_port=args.http_port,
        model_name=args.model_name,
        workers=args.workers,
        max_items=args.max_items,
        conversion_weight=args.conversion_weight,
        online=online,
    )


_ONLINE_FLAGS = {
    "timeout_s": "--feature-timeout",
    "item_refresh_s": "--item-refresh",
    "max_prepared_items": "--prepared-items",
}


def _online_config(args: argparse.Namespace) -> OnlineFeaturesConfig:
    try:
        return OnlineFeaturesConfig(
            timeout_s=args.feature_timeout,
            item_refresh_s=args.item_refresh,
            max_prepared_items=args.prepared_items,
        )
    except ValueError as error:
        field, _, reason = str(error).partition(": ")
        raise ValueError(f"{_ONLINE_FLAGS.get(field, field)}: {reason}") from error


def _artifact_version(artifact_dir: Path | None) -> str | None:
    """The version of a model artifact (checksums verified), without loading its weights."""
    if artifact_dir is None:
        return None
    from models.artifact import CONFIG, verify_artifact

    try:
        verify_artifact(artifact_dir)
    except ValueError as error:
        raise ValueError(f"artifact: {error}") from error
    return str(json.loads((artifact_dir / CONFIG).read_text())["version"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.server",
        description="Serve a RecForge ranker with KServe (V1 and V2 protocols).",
        epilog="example: python -m serving.server --artifact out/model --port 8080",
    )
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
