"""One typed run configuration, from built-in profiles and an optional YAML file, to every step.

Each layer owns its section's dataclass (simulation, data checks, features, model, training,
blessing, canary); this module composes them, applies profiles and overrides, and turns unknown or
ill-typed keys into errors that name the field and the allowed choices.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.config import ModelConfig, TrainConfig
from pipelines.check_config import DataCheckConfig
from pipelines.evaluation import BlessingConfig
from pipelines.feature_config import FeatureConfig
from pipelines.sim_config import SimulationConfig
from serving.canary import CanaryConfig


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class RunConfig:
    profile: str = "default"
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    data_checks: DataCheckConfig = field(default_factory=DataCheckConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    blessing: BlessingConfig = field(default_factory=BlessingConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    holdout_days: int = 1
    baseline_days: int = 0
    data_dir: str = ""

    def __post_init__(self) -> None:
        if self.data_dir and not (Path(self.data_dir) / "events").is_dir():
            raise ConfigError(
                f"data_dir: {self.data_dir} has no events/ folder; it must hold events/*.parquet, "
                "users.parquet and items.parquet (see README, data contract), or leave data_dir "
                "empty to simulate"
            )
        if self.holdout_days < 1 or self.holdout_days >= self.simulation.days:
            raise ConfigError(
                f"holdout_days: must be in [1, simulation.days - 1] = [1, {self.simulation.days - 1}]"
            )
        if not 0 <= self.baseline_days <= self.simulation.days - self.holdout_days:
            raise ConfigError(
                "baseline_days: must be in [0, simulation.days - holdout_days]; "
                "0 trains the bootstrap baseline on the first half of the training days"
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return build(cls, json.loads(text), "")


PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "smoke": {
        "simulation": {"num_users": 1500, "num_items": 400, "num_impressions": 60_000, "days": 6},
        "train": {"epochs": 2, "batch_size": 1024},
        "model": {"expert_hidden": [64, 32], "num_experts": 3},
        "canary": {"num_requests": 300},
        "blessing": {"min_auc": {"click": 0.55, "conversion": 0.5}},
    },
}


def load_config(
    profile: str = "default", path: Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Profile defaults, then the YAML file's sections, then explicit overrides, validated."""
    if profile not in PROFILES:
        raise ConfigError(f"profile: unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    data: dict[str, Any] = {"profile": profile}
    _merge(data, PROFILES[profile])
    if path is not None:
        _merge(data, read_config_file(Path(path)))
    _merge(data, overrides or {})
    return build(RunConfig, data, "")


def build(cls: type, data: Any, prefix: str) -> Any:
    """Construct dataclass `cls` from plain data, checking every key and type on the way."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_join(prefix, unknown[0])}: unknown field; allowed fields here: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    values = {name: _convert(hints[name], value, _join(prefix, name)) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{prefix + ': ' if prefix else ''}{error}") from None


def _convert(hint: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, name)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, name)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{name}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(hint)
        return {
            _convert(key_type, k, name): _convert(value_type, v, f"{name}.{k}")
            for k, v in value.items()
        }
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{name}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (
        not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))
    ):
        raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}")
    return value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def read_config_file(path: Path | str) -> dict[str, Any]:
    """The YAML mapping of config sections in `path`; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no file at {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"--config: {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of sections")
    return data


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
