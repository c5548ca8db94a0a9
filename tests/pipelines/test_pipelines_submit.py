"""`recforge submit` against a loopback stand-in for the KFP API server (no cluster here)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from pipelines.cli import main
from pipelines.config import load_config


class KfpApiStandIn(BaseHTTPRequestHandler):
    """Records each request and answers like KFP's v2beta1 REST API would."""

    requests: list = []

    def _reply(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.requests.append(("GET", self.path, None))
        self._reply({})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.requests.append(("POST", self.path, body))
        if self.path.endswith("/experiments"):
            self._reply({"experiment_id": "exp-1", "display_name": body["display_name"]})
        else:
            self._reply({"run_id": "run-1", "display_name": body["display_name"]})

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_api():
    KfpApiStandIn.requests = []
    server = HTTPServer(("127.0.0.1", 0), KfpApiStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", KfpApiStandIn.requests
    server.shutdown()
    server.server_close()


def test_submit_creates_a_run_carrying_the_compiled_pipeline_and_config(kfp_api, capsys):
    host, requests = kfp_api
    assert main(["submit", "--profile", "smoke", "--host", host, "--run-name", "nightly"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run_id": "run-1", "host": host}
    runs = [body for method, path, body in requests if path == "/apis/v2beta1/runs"]
    assert len(runs) == 1
    run = runs[0]
    assert run["display_name"] == "nightly" and run["experiment_id"] == "exp-1"
    parameters = run["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]
    assert parameters["config_json"]["defaultValue"] == load_config("smoke").to_json()
    assert parameters["registry_dir"]["defaultValue"] == "/mnt/recforge/registry"


def test_submit_to_an_unreachable_host_is_a_clear_error(capsys):
    assert main(["submit", "--profile", "smoke", "--host", "http://127.0.0.1:9"]) == 1
    assert "submit failed: http://127.0.0.1:9" in capsys.readouterr().err
