"""A file-system model registry: versions by name, and which version is served."""

from __future__ import annotations

import json
import os
from pathlib import Path

from models.artifact import copy_artifact, verify_artifact


class ModelRegistry:
    """`root/versions/<version>/` holds artifacts; `root/serving.json` names the served one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def register(self, artifact: Path, version: str) -> Path:
        destination = self.root / "versions" / version
        if destination.exists():
            verify_artifact(destination)
            return destination
        destination.parent.mkdir(parents=True, exist_ok=True)
        return copy_artifact(Path(artifact), destination)

    def serving(self) -> Path | None:
        pointer = self.root / "serving.json"
        if not pointer.is_file():
            return None
        version = json.loads(pointer.read_text())["version"]
        path = self.root / "versions" / version
        verify_artifact(path)
        return path

    def set_serving(self, version: str) -> None:
        verify_artifact(self.root / "versions" / version)
        pointer = self.root / "serving.json"
        staging = pointer.with_suffix(".tmp")
        staging.write_text(json.dumps({"version": version}) + "\n")
        os.replace(staging, pointer)
