"""Continual retraining on a cluster: upload the compiled pipeline as a new version of a named KFP
pipeline and (optionally) schedule it with a recurring run.

Re-running it (every ``helm upgrade`` does) replaces the recurring run of the same name, so one
schedule always points at the newest version instead of schedules piling up.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.submission import SubmissionError

_CRON_FIELD = r"[\w*/,?#L-]+"
_FIVE_FIELDS = re.compile(rf"^{_CRON_FIELD}(\s+{_CRON_FIELD}){{4}}$")
_SIX_FIELDS = re.compile(rf"^{_CRON_FIELD}(\s+{_CRON_FIELD}){{5}}$")
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@dataclass(frozen=True)
class Upload:
    pipeline_id: str
    version_id: str
    recurring_run_id: str | None = None
    schedule: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def kfp_cron(schedule: str) -> str:
    """KFP's 6-field cron (seconds first) from the usual 5-field one; 6 fields and @descriptors
    pass through. Anything else is an error naming the flag."""
    schedule = " ".join(schedule.split())
    if schedule in _DESCRIPTORS or _SIX_FIELDS.match(schedule):
        return schedule
    if _FIVE_FIELDS.match(schedule):
        return f"0 {schedule}"
    raise ValueError(
        f'--schedule: {schedule!r} is not a cron schedule; write five fields, e.g. "0 3 * * *" '
        "(03:00 every day), or a descriptor such as @daily"
    )


def upload_and_schedule(
    package: Path,
    host: str,
    *,
    pipeline_name: str,
    version_name: str,
    experiment: str,
    schedule: str | None = None,
) -> Upload:
    """Upload ``package`` as version ``version_name`` of ``pipeline_name`` (created when new);
    with ``schedule`` (cron), point the recurring run ``<pipeline_name>-schedule`` at it."""
    cron = kfp_cron(schedule) if schedule else None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # kfp prints UI links: keep stdout for JSON
            client = _client(host)
            pipeline_id = client.get_pipeline_id(pipeline_name)
            if pipeline_id is None:
                pipeline_id = client.upload_pipeline(str(package), pipeline_name=pipeline_name).pipeline_id
                versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
                version_id = versions.pipeline_versions[0].pipeline_version_id
            else:
                version_id = client.upload_pipeline_version(
                    str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
                ).pipeline_version_id
            if cron is None:
                return Upload(pipeline_id, version_id)
            recurring_run_id = _replace_recurring_run(
                client, experiment, f"{pipeline_name}-schedule", cron, pipeline_id, version_id
            )
    except Exception as error:  # noqa: BLE001 - the API client raises many unrelated types
        raise SubmissionError(f"{host}: {type(error).__name__}: {error}") from None
    return Upload(pipeline_id, version_id, recurring_run_id, cron)


def _client(host: str):
    import kfp

    return kfp.Client(host=host)


def _replace_recurring_run(
    client, experiment: str, job_name: str, cron: str, pipeline_id: str, version_id: str
) -> str:
    experiment_id = client.create_experiment(experiment).experiment_id
    same_name = json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": job_name}]}
    )
    existing = client.list_recurring_runs(experiment_id=experiment_id, filter=same_name)
    for run in existing.recurring_runs or ():
        client.delete_recurring_run(run.recurring_run_id)
    created = client.create_recurring_run(
        experiment_id,
        job_name,
        cron_expression=cron,
        pipeline_id=pipeline_id,
        version_id=version_id,
        max_concurrency=1,
        no_catchup=True,
    )
    return created.recurring_run_id
