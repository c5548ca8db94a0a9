"""The pipeline for a cluster: per-step Kubernetes settings from the run config's cluster section
(kfp-kubernetes writes them into the IR's platform spec), loadable back into kfp, uploaded and
scheduled through the real kfp.Client against a loopback stand-in for the KFP API server."""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from k8s_chart_helpers import one_of_kind

from pipelines.cluster_cli import add_submit_arguments, load_run_and_cluster, run_compile, run_submit
from pipelines.cluster_config import STEP_NAMES, ClusterConfig, split_cluster_section
from pipelines.cluster_submit import kfp_cron
from pipelines.config import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:This client only works with Kubeflow Pipeline")

CLUSTER = {
    "image": "ghcr.io/acme/recforge:1.2.3",
    "image_pull_policy": "Always",
    "resources": {"cpu_request": "1", "cpu_limit": "2", "memory_request": "2Gi", "memory_limit": "4Gi"},
    "step_resources": {
        "build-training-set": {
            "cpu_request": "2",
            "cpu_limit": "4",
            "memory_request": "8Gi",
            "memory_limit": "16Gi",
        },
    },
    "training_gpu": {
        "accelerator_type": "nvidia.com/gpu",
        "count": 1,
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    "secret_env": [{"secret": "recforge-object-store", "key": "access_key", "env": "AWS_ACCESS_KEY_ID"}],
    "artifact_pvc": "recforge-artifacts",
    "pipeline_root": "s3://recforge-pipelines/root",
}


def parser_with(add_arguments, **lead_flags) -> argparse.ArgumentParser:
    """The lead's compile/submit flags plus ours, as `recforge` wires them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default")
    parser.add_argument("--config")
    for flag, default in lead_flags.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", default=default)
    add_arguments(parser)
    return parser


@pytest.fixture(scope="module")
def cluster_ir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump({"train": {"epochs": 2}, "cluster": CLUSTER}))
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--config")
    parser.add_argument("--output")
    from pipelines.cluster_cli import add_compile_arguments

    add_compile_arguments(parser)
    args = parser.parse_args(
        ["--config", str(config), "--output", str(folder / "p.yaml"), "--target", "cluster"]
    )
    assert run_compile(args) == 0
    return folder / "p.yaml"


def executors(path) -> tuple[dict, dict]:
    pipeline, platform = yaml.safe_load_all(path.read_text())
    return pipeline["deploymentSpec"]["executors"], platform["platforms"]["kubernetes"]["deploymentSpec"][
        "executors"
    ]


def test_the_cluster_ir_loads_back_into_kfp_with_every_step(cluster_ir):
    from kfp import components

    assert components.load_component_from_file(str(cluster_ir)).name == "recforge"
    pipeline = next(yaml.safe_load_all(cluster_ir.read_text()))
    assert set(pipeline["root"]["dag"]["tasks"]) == set(STEP_NAMES)
    assert pipeline["defaultPipelineRoot"] == "s3://recforge-pipelines/root"


def test_every_step_runs_the_configured_image_with_requests_and_limits(cluster_ir):
    containers, platform = executors(cluster_ir)
    for step in STEP_NAMES:
        container = containers[f"exec-{step}"]["container"]
        assert container["image"] == "ghcr.io/acme/recforge:1.2.3"
        assert {
            "resourceCpuRequest",
            "resourceCpuLimit",
            "resourceMemoryRequest",
            "resourceMemoryLimit",
        } <= set(container["resources"])
        assert platform[f"exec-{step}"]["imagePullPolicy"] == "Always"
    big = containers["exec-build-training-set"]["container"]["resources"]
    assert big["resourceMemoryLimit"] == "16Gi" and big["resourceCpuRequest"] == "2"


def test_only_the_training_steps_get_the_gpu_node_selector_and_toleration(cluster_ir):
    containers, platform = executors(cluster_ir)
    with_gpu = {
        step for step in STEP_NAMES if "accelerator" in containers[f"exec-{step}"]["container"]["resources"]
    }
    assert with_gpu == {"train-candidate", "resolve-baseline"}
    train = platform["exec-train-candidate"]
    assert train["nodeSelector"] == {"labels": {"cloud.google.com/gke-accelerator": "nvidia-l4"}}
    assert train["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert "nodeSelector" not in platform["exec-check-data"]


def test_secrets_arrive_as_env_and_the_artifact_pvc_is_mounted_in_every_step(cluster_ir):
    _, platform = executors(cluster_ir)
    for step in STEP_NAMES:
        (secret,) = platform[f"exec-{step}"]["secretAsEnv"]
        assert secret["secretName"] == "recforge-object-store"
        assert secret["keyToEnv"] == [{"secretKey": "access_key", "envVar": "AWS_ACCESS_KEY_ID"}]
        (pvc,) = platform[f"exec-{step}"]["pvcMount"]
        assert pvc["mountPath"] == "/mnt/recforge" and pvc["constant"] == "recforge-artifacts"


def test_the_local_target_refuses_cluster_settings(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"cluster": {"image": "x:1"}}))
    parser = parser_with(add_submit_arguments, host="h", experiment="e", run_name=None, registry_dir="/r")
    with pytest.raises(ConfigError, match="cluster: .* only apply to --target cluster"):
        load_run_and_cluster(parser.parse_args(["--config", str(config)]))


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"resources": {"cpu_request": 0.5}}, "cluster.resources.cpu_request"),
        ({"resources": {"cpu_request": "half"}}, "cluster.resources.cpu_request"),
        ({"step_resources": {"train": {}}}, "cluster.step_resources"),
        ({"training_gpu": {"count": 1, "steps": ["training"]}}, "cluster.training_gpu.steps"),
        ({"image_pull_policy": "Sometimes"}, "cluster.image_pull_policy"),
        ({"pipeline_root": "/local/root"}, "cluster.pipeline_root"),
        ({"secret_env": [{"secret": "s", "key": "k", "env": "not valid"}]}, "cluster.secret_env.env"),
        ({"gpu": 1}, "cluster.gpu"),
    ],
)
def test_a_bad_cluster_section_names_the_field(section, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        split_cluster_section({"cluster": section})


def test_defaults_are_a_cpu_cluster():
    _, cluster = split_cluster_section({})
    assert cluster == ClusterConfig() and cluster.training_gpu.count == 0


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 3 * * *", "0 0 3 * * *"),
        ("*/15  * * * 1-5", "0 */15 * * * 1-5"),
        ("0 0 3 * * *", "0 0 3 * * *"),
        ("@daily", "@daily"),
    ],
)
def test_cron_schedules_become_kfps_six_field_form(cron, expected):
    assert kfp_cron(cron) == expected


def test_a_malformed_schedule_names_the_flag():
    with pytest.raises(ValueError, match="--schedule: 'every night'"):
        kfp_cron("every night")


class KfpApiStandIn(BaseHTTPRequestHandler):
    """Loopback stand-in for KFP's v2beta1 REST API: records requests, answers like the server."""

    requests: list = []
    existing_pipeline: bool = False

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, method: str) -> str:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        self.requests.append((method, path, self.path, body))
        return path

    def do_GET(self):
        path = self._record("GET")
        if path == "/apis/v2beta1/pipelines":
            found = [{"pipeline_id": "p-1", "display_name": "recforge"}] if self.existing_pipeline else []
            self._reply({"pipelines": found, "total_size": len(found)})
        elif path.endswith("/versions"):
            self._reply({"pipeline_versions": [{"pipeline_id": "p-1", "pipeline_version_id": "v-1"}]})
        elif path == "/apis/v2beta1/experiments":
            self._reply(
                {"experiments": [{"experiment_id": "e-1", "display_name": "recforge"}], "total_size": 1}
            )
        elif path == "/apis/v2beta1/recurringruns":
            self._reply(
                {"recurringRuns": [{"recurring_run_id": "r-old", "display_name": "recforge-schedule"}]}
            )
        else:
            self._reply({})

    def do_POST(self):
        path = self._record("POST")
        replies = {
            "/apis/v2beta1/pipelines/upload": {"pipeline_id": "p-1", "display_name": "recforge"},
            "/apis/v2beta1/pipelines/upload_version": {"pipeline_id": "p-1", "pipeline_version_id": "v-2"},
            "/apis/v2beta1/recurringruns": {"recurring_run_id": "r-new"},
        }
        self._reply(replies.get(path, {}))

    def do_DELETE(self):
        self._record("DELETE")
        self._reply({})

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_api():
    KfpApiStandIn.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KfpApiStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", KfpApiStandIn
    server.shutdown()
    server.server_close()


def submit(host: str, *extra: str) -> int:
    parser = parser_with(
        add_submit_arguments,
        host=host,
        experiment="recforge",
        run_name=None,
        registry_dir="/mnt/recforge/registry",
    )
    return run_submit(parser.parse_args(["--profile", "smoke", *extra]))


def test_schedule_uploads_a_new_pipeline_and_creates_the_recurring_run(kfp_api, capsys):
    host, api = kfp_api
    api.existing_pipeline = False
    assert submit(host, "--target", "cluster", "--schedule", "0 3 * * *", "--version-name", "nightly-1") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pipeline_id"] == "p-1" and out["version_id"] == "v-1" and out["recurring_run_id"] == "r-new"
    posts = {path: body for method, path, _, body in api.requests if method == "POST"}
    assert b"platforms" in posts["/apis/v2beta1/pipelines/upload"]  # the cluster IR went up
    run = json.loads(posts["/apis/v2beta1/recurringruns"])
    assert run["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-1"}
    assert run["display_name"] == "recforge-schedule" and run["max_concurrency"] == 1


def test_a_new_version_replaces_the_previous_schedule(kfp_api, capsys):
    host, api = kfp_api
    api.existing_pipeline = True
    assert submit(host, "--target", "cluster", "--schedule", "0 3 * * *", "--version-name", "nightly-2") == 0
    assert json.loads(capsys.readouterr().out)["version_id"] == "v-2"
    calls = [(method, path) for method, path, _, _ in api.requests]
    assert ("POST", "/apis/v2beta1/pipelines/upload_version") in calls
    assert ("POST", "/apis/v2beta1/pipelines/upload") not in calls
    deleted = calls.index(("DELETE", "/apis/v2beta1/recurringruns/r-old"))
    assert deleted < calls.index(("POST", "/apis/v2beta1/recurringruns"))


def test_a_bad_schedule_fails_before_compiling(capsys):
    assert submit("http://127.0.0.1:9", "--schedule", "nightly") == 2
    assert "--schedule: 'nightly'" in capsys.readouterr().err


def test_the_charts_upload_job_is_a_valid_submit_command(rendered, values_by_set, tmp_path):
    job = one_of_kind(rendered["kfp-hook"], "Job", "-kfp-upload")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["recforge"] and container["args"][0] == "submit"
    parser = parser_with(
        add_submit_arguments,
        host=None,
        experiment="recforge",
        run_name=None,
        registry_dir="/mnt/recforge/registry",
    )
    config = tmp_path / "run-config.yaml"
    config.write_text(yaml.safe_dump(values_by_set["kfp-hook"]["kfp"]["runConfig"]))
    args_list = [str(config) if a == "/etc/recforge/run-config.yaml" else a for a in container["args"][1:]]
    args = parser.parse_args(args_list)
    assert args.target == "cluster" and kfp_cron(args.schedule) == "0 0 3 * * *"
    run_config, cluster = load_run_and_cluster(args)
    assert cluster.image == container["image"] and run_config.train.epochs == 3


def test_the_gpu_value_sets_run_config_is_a_valid_cluster_config(values_by_set):
    _, cluster = split_cluster_section(values_by_set["gpu"]["kfp"]["runConfig"])
    assert cluster.training_gpu.count == 1
