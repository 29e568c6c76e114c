"""`make sweep` (seed recommendation 3): training settings crossed over several seeds, as mean ± sd.

A sweep is a YAML file: a base profile, the overrides every run shares, the seeds, and one or more grids
whose union is run (each grid is the full product of its axes). Every (setting, seed) is an ordinary run
under runs/, so a sweep that is stopped continues where it was: finished runs are skipped.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotionlib.config import FIELDS, Config, ConfigError, load_config, parse_overrides, parse_yaml
from emotionlib.preflight import check
from emotionlib.runs import RunLayout, atomic_dir, check_replaceable, read_json, write_json
from emotionlib.provenance import provenance
from emotionlib import plots
from emotionlib.data import train_languages
from emotionlib.evaluate import evaluate
from emotionlib.build import build

log = logging.getLogger(__name__)

METRICS = ("val_f1_0.5", "val_f1_tuned", "dev_f1_0.5", "dev_f1_tuned", "best_epoch", "train_seconds")


@dataclass(frozen=True)
class SweepSpec:
    name: str
    profile: str
    base: dict
    seeds: tuple[int, ...]
    grids: tuple[dict, ...]

    @classmethod
    def load(cls, path: Path, overrides: list[str] | None = None) -> "SweepSpec":
        path = Path(path)
        try:
            raw = parse_yaml(path.read_text(encoding="utf-8"), path) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the sweep file ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a sweep file is a mapping with profile, set, seeds and grids")
        unknown = set(raw) - {"name", "profile", "set", "seeds", "grids"}
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; a sweep has name, profile, set, seeds, grids")
        grids = tuple(raw.get("grids") or ())
        if not grids or not all(isinstance(g, dict) and g for g in grids):
            raise ConfigError(f"{path}: 'grids' must be a list of mappings field -> list of values")
        for i, grid in enumerate(grids):
            for field, values in grid.items():
                if field not in FIELDS or field in ("seed", "run_id", "runs_dir"):
                    raise ConfigError(f"{path}: grid {i + 1} field {field!r} is not a config field that a sweep varies")
                if not isinstance(values, list) or not values:
                    raise ConfigError(f"{path}: grid {i + 1} field {field!r} must be a non-empty list")
        seeds = raw.get("seeds", [42])
        if not (
            isinstance(seeds, list)
            and seeds
            and all(isinstance(x, int) and not isinstance(x, bool) for x in seeds)
            and len(set(seeds)) == len(seeds)
        ):
            raise ConfigError(
                f"{path}: 'seeds' must be a non-empty list of distinct whole numbers (got {seeds!r}); "
                "a seed named twice would count one run twice"
            )
        seeds = tuple(seeds)
        profile = str(raw.get("profile", "quick"))
        if Path(profile).suffix and not Path(profile).is_absolute():  # a YAML path: relative to the sweep file
            profile = str((path.parent / profile).resolve())
        base = dict(raw.get("set") or {}) | parse_overrides(overrides)
        spec = cls(name=str(raw.get("name", path.stem)), profile=profile, base=base, seeds=seeds, grids=grids)
        for setting in spec.settings():  # every setting must make a valid config before anything trains
            spec.config(setting, seeds[0], "runs")
        return spec

    def settings(self) -> list[dict]:
        """The union of the grids' products, in order, each setting once; an axis a grid leaves out takes the
        base profile's value, so every setting names every axis."""
        base = load_config(self.profile, self.base)
        out, seen = [], set()
        for grid in self.grids:
            for values in itertools.product(*grid.values()):
                full = load_config(base.to_dict() | dict(zip(grid.keys(), values)))
                setting = {k: getattr(full, k) for k in self.axes()}
                key = tuple(str(v) for v in setting.values())
                if key not in seen:
                    seen.add(key)
                    out.append(setting)
        return out

    def axes(self) -> list[str]:
        return list(dict.fromkeys(k for g in self.grids for k in g))

    def config(self, setting: dict, seed: int, runs_dir: str) -> Config:
        base = load_config(self.profile, self.base)
        cfg = load_config(base.to_dict() | setting | {"seed": seed, "runs_dir": runs_dir})
        label = "-".join(f"{_short(k)}{_value(getattr(cfg, k))}" for k in self.axes())
        return cfg.replace(run_id=f"sweep-{self.name}-{label}-s{seed}")


def _short(field: str) -> str:
    return {"learning_rate": "lr", "epochs": "e", "loss_weighting": "w", "loss": "", "model": ""}.get(
        field, field + "="
    )


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def run_one(cfg: Config) -> dict:
    """Train (skipped when done) and evaluate one run; its figures for the sweep table."""
    run_dir = build(cfg, resume=False)[0]  # its teacher first, for a distilled setting
    metrics = evaluate(run_dir)["metrics"]
    lang = train_languages(cfg)[0]
    sets = metrics["sets"]

    def f1(key: str, thr: str) -> float:
        return sets[key][thr]["macro_f1"] if key in sets else float("nan")

    summary = read_json(RunLayout(run_dir).train_summary)
    val_keys = [k for k in sets if k.startswith("val/")]
    labels = dict.fromkeys(lab for k in val_keys for lab in sets[k]["threshold_0.5"]["per_label"])
    per_label = {
        f"val_{lab}_0.5": float(
            np.nanmean([sets[k]["threshold_0.5"]["per_label"].get(lab, {}).get("f1", np.nan) for k in val_keys])
        )
        for lab in labels
    }  # what a setting does to each label
    return {
        "run_id": cfg.run_id,
        "seed": cfg.seed,
        **per_label,
        "val_f1_0.5": float(np.mean([f1(k, "threshold_0.5") for k in val_keys])),
        "val_f1_tuned": float(np.mean([f1(k, "tuned_thresholds") for k in val_keys])),
        "dev_f1_0.5": f1(f"dev/{lang}", "threshold_0.5"),
        "dev_f1_tuned": f1(f"dev/{lang}", "tuned_thresholds"),
        "best_epoch": summary["best_epoch"],
        "train_seconds": summary["wall_seconds"],
    }


def _worker(args: tuple[dict, int, str]) -> dict:
    """One run in a child process with its share of the cores; its output goes to a log file."""
    values, threads, log = args
    import torch

    torch.set_num_threads(threads)
    with open(log, "a", encoding="utf-8") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        return run_one(load_config(values))


def _finished(cfg: Config) -> bool:
    """Trained and evaluated: `run_one` only reads it (each step checks that it is current)."""
    layout = RunLayout(cfg.run_dir)
    return layout.train_summary.is_file() and layout.metrics.is_file()


def _run_all(todo: list, jobs: int, logs: Path, started: float) -> list[dict]:
    """Each (setting, config) trained and evaluated in a fresh process, `jobs` at a time; a row each."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // jobs)
    rows = []
    ctx = mp.get_context("spawn")  # a fresh interpreter per run: no torch state shared between runs
    # each worker keeps to its share of the cores (OpenMP threads that outnumber the cores spin against each other)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
            # a finished run's row is read here: a fresh interpreter is for training, and costs seconds to start
            futures = [
                (
                    setting,
                    None
                    if _finished(cfg)
                    else pool.submit(_worker, (cfg.to_dict(), threads, str(logs / f"{cfg.run_id}.log"))),
                    cfg,
                )
                for setting, cfg in todo
            ]
            for i, (setting, fut, cfg) in enumerate(futures, start=1):
                # a failed run stops the sweep with its error; finished runs stay done
                row = run_one(cfg) if fut is None else fut.result()
                rows.append({**{k: _value(v) if isinstance(v, float) else v for k, v in setting.items()}, **row})
                log.info(
                    f"[{i}/{len(todo)}] {row['run_id']}: val {row['val_f1_0.5']:.4f} (0.5) dev "
                    f"{row['dev_f1_tuned']:.4f} (tuned) best epoch {row['best_epoch']}  "
                    f"[{(time.time() - started) / 60:.1f} min]"
                )
    finally:  # the caller's environment as it was, whether the sweep finished or a run failed
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    return rows


def _write_summary(
    out: Path, spec: SweepSpec, runs: pd.DataFrame, table: pd.DataFrame, jobs: int, started: float
) -> None:
    """runs.csv, summary.csv, sweep.png and sweep.json, written together (all or none)."""
    with atomic_dir(out, "sweep") as tmp:
        runs.to_csv(tmp / "runs.csv", index=False)
        table.to_csv(tmp / "summary.csv", index=False)
        plots.sweep_bars(table, spec.axes(), tmp / "sweep.png")
        write_json(
            tmp / "sweep.json",
            {
                "name": spec.name,
                "profile": spec.profile,
                "set": spec.base,
                "seeds": list(spec.seeds),
                "grids": list(spec.grids),
                "jobs": jobs,
                "wall_seconds": round(time.time() - started, 1),
                "provenance": provenance(),
            },
        )


def run_sweep(spec: SweepSpec, runs_dir: str = "runs", out_root: Path = Path("reports"), jobs: int = 1) -> Path:
    """Every (setting, seed) run, then runs.csv, summary.csv (mean ± sd over seeds) and sweep.png."""
    started = time.time()
    settings = spec.settings()
    out = Path(out_root) / f"sweep-{spec.name}"
    logs = out.parent / f".sweep-{spec.name}-logs"
    todo = [(setting, spec.config(setting, seed, runs_dir)) for setting in settings for seed in spec.seeds]
    check_replaceable(out, "sweep")  # the summary folder, refused now rather than after the last run
    for _, cfg in todo:  # every run's settings, data and encoder, before the first write
        check(cfg)
    logs.mkdir(parents=True, exist_ok=True)
    log.info(
        f"sweep {spec.name}: {len(settings)} settings x {len(spec.seeds)} seeds = {len(todo)} runs, "
        f"{jobs} at a time; logs in {logs}"
    )
    rows = _run_all(todo, jobs, logs, started)
    runs = pd.DataFrame(rows)
    table = summarise(runs, spec.axes())
    _write_summary(out, spec, runs, table, jobs, started)
    log.info(table.to_string(index=False))
    return out


def summarise(runs: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """One row per setting: mean and sd over seeds of each figure, best validation mean first."""
    g = runs.groupby(axes, sort=False, dropna=False)
    table = g.size().rename("seeds").reset_index()
    for m in METRICS + tuple(c for c in runs.columns if c.startswith("val_") and c not in METRICS):
        table[f"{m}_mean"] = g[m].mean().values
        table[f"{m}_sd"] = g[m].std(ddof=1).values
    return table.sort_values("val_f1_0.5_mean", ascending=False, kind="stable").reset_index(drop=True)


def read_summary(path: Path) -> pd.DataFrame:
    """A sweep's summary.csv (for the report), with a clear error when the sweep has not been run."""
    path = Path(path)
    if path.is_dir():
        path = path / "summary.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sweep summary here; run `make sweep` first")
    return pd.read_csv(path)
