"""A run's own settings: written once into runs/<run_id>/config.yaml when the run is claimed, read back by every
later step, and other settings refused with the differing fields named."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from emotionlib.config import FIELDS, LOCATION_FIELDS, Config, ConfigError, load_config, parse_yaml, read_text
from emotionlib.runs import atomic_write_text, claim_run_dir


def save_config(cfg: Config, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))


# fields that say where things are (a run's id is its folder's name: a moved or copied run keeps its settings) or how
# fast to run, not what the run computes


def differing_fields(recorded: Config, given: Config) -> dict[str, tuple[Any, Any]]:
    a, b = recorded.to_dict(), given.to_dict()
    return {k: (a[k], b[k]) for k in FIELDS if k not in LOCATION_FIELDS and a[k] != b[k]}


def check_config(cfg: Config, run_dir: Path) -> bool:
    """True when the run exists with these settings, False when it does not exist; other settings are refused."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return False
    diff = differing_fields(read_config(run_dir), cfg)
    if diff:
        names = "; ".join(f"{k}: {old!r} in the run, {new!r} given" for k, (old, new) in diff.items())
        raise ConfigError(
            f"{run_dir}: this run was made with other settings ({names}); choose another run_id "
            "or drop the differing overrides"
        )
    return True


def claim_config(cfg: Config, run_dir: Path) -> None:
    """Write the run's config.yaml once; a later step with other settings is refused, the fields named."""
    if not check_config(cfg, run_dir):
        claim_run_dir(run_dir)  # a folder emotionlib did not make is refused here
        save_config(cfg, Path(run_dir) / "config.yaml")


def read_config(run_dir: Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config in this run directory (run the data or train step first)")
    data = parse_yaml(read_text(path), path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run's config must be a mapping of config fields")
    return load_config(data)


def config_of_run(run_dir: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """A run's own settings, found where the run is now (moved, copied or reached through a link); overrides
    may change where and how fast it runs, not what it computes."""
    run_dir = Path(run_dir).resolve()  # a link's own name is not the run's id
    recorded = read_config(run_dir)
    cfg = load_config(
        recorded.to_dict() | {"runs_dir": str(run_dir.parent), "run_id": run_dir.name} | dict(overrides or {})
    )
    check_config(cfg, run_dir)
    return cfg
