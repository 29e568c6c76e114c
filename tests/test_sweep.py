"""`make sweep`: the spec is checked before anything trains; every (setting, seed) is a run; mean ± sd over seeds."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotionlib.config import ConfigError
from emotionlib.sweep import SweepSpec, run_sweep, summarise


def write(tmp_path, text: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_grids_are_unioned_with_every_axis_named_and_each_setting_once(tmp_path):
    spec = SweepSpec.load(
        write(
            tmp_path,
            "profile: quick\nseeds: [1, 2, 3]\ngrids:\n"
            "  - {loss: [bce, focal], loss_weighting: [none, dynamic]}\n"
            "  - {learning_rate: [1.0e-4, 2.0e-4]}\n",
        )
    )
    settings = spec.settings()
    assert len(settings) == 5  # 4 + 2, the quick profile's (bce, none, 1e-4) counted once
    assert all(set(s) == {"loss", "loss_weighting", "learning_rate"} for s in settings)
    ids = {spec.config(s, seed, "runs").run_id for s in settings for seed in spec.seeds}
    assert len(ids) == 15 and all(i.startswith("sweep-sweep-") for i in ids)


@pytest.mark.parametrize(
    "grids, message",
    [
        ("  - {loss: [bce, hinge]}", "loss"),
        ("  - {not_a_field: [1]}", "not_a_field"),
        ("  - {seed: [1, 2]}", "seed"),
        ("  - {epochs: []}", "non-empty list"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(tmp_path, grids, message):
    with pytest.raises(ConfigError, match=message):
        SweepSpec.load(write(tmp_path, f"profile: smoke\ngrids:\n{grids}\n"))


def test_summary_is_mean_and_sd_over_seeds_best_first():
    runs = pd.DataFrame(
        {
            "loss": ["bce"] * 3 + ["focal"] * 3,
            "seed": [1, 2, 3] * 2,
            "val_f1_0.5": [0.5, 0.6, 0.7, 0.7, 0.8, 0.9],
            "val_f1_tuned": 0.5,
            "dev_f1_0.5": 0.5,
            "dev_f1_tuned": 0.5,
            "best_epoch": [1, 2, 3] * 2,
            "train_seconds": 1.0,
            "val_anger_0.5": [0.1, 0.2, 0.3, 0.4, 0.4, 0.4],
        }
    )
    table = summarise(runs, ["loss"])
    assert list(table["loss"]) == ["focal", "bce"] and list(table["seeds"]) == [3, 3]
    assert np.allclose(table["val_anger_0.5_mean"], [0.4, 0.2]) and np.allclose(table["val_anger_0.5_sd"], [0, 0.1])
    assert np.isclose(table.loc[0, "val_f1_0.5_mean"], 0.8) and np.isclose(table.loc[0, "val_f1_0.5_sd"], 0.1)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_runs_every_setting_and_seed_and_resumes(tmp_path):
    spec = SweepSpec.load(
        write(tmp_path, "name: t\nprofile: smoke\nseeds: [1]\ngrids:\n  - {loss_weighting: [none, static]}\n")
    )  # two settings, one seed: the summary's mean and sd over several seeds are tested above without training
    out = run_sweep(spec, str(tmp_path / "runs"), tmp_path / "reports")
    runs, table = pd.read_csv(out / "runs.csv"), pd.read_csv(out / "summary.csv")
    assert len(runs) == 2 and (out / "sweep.png").is_file() and (out / "sweep.json").is_file()
    for w, group in runs.groupby("loss_weighting"):
        row = table[table["loss_weighting"] == w].iloc[0]
        assert np.isclose(row["val_f1_0.5_mean"], group["val_f1_0.5"].mean())
        assert np.isclose(row["dev_f1_tuned_sd"], group["dev_f1_tuned"].std(ddof=1), equal_nan=True)
        assert np.isclose(row["val_fear_0.5_mean"], group["val_fear_0.5"].mean())  # each label's figure too
    for run_id in runs["run_id"]:
        assert (tmp_path / "runs" / run_id / "metrics.json").is_file()
    logs = {p: p.stat().st_size for p in (tmp_path / "reports" / ".sweep-t-logs").glob("*.log")}
    again = pd.read_csv(run_sweep(spec, str(tmp_path / "runs"), tmp_path / "reports") / "runs.csv")
    assert again.drop(columns="train_seconds").equals(runs.drop(columns="train_seconds"))  # runs are reused
    assert len(logs) == 2 and all(p.stat().st_size == n for p, n in logs.items())  # no process started for them


def test_the_report_cites_every_sweep_table(tmp_path):
    from emotionlib.report import sweep_citation

    assert sweep_citation(tmp_path).data == ""  # no sweep in this checkout: the report leaves the citation out
    runs = pd.DataFrame(
        {
            "loss": ["bce", "bce"],
            "seed": [1, 2],
            "val_f1_0.5": [0.6, 0.7],
            "val_f1_tuned": 0.7,
            "dev_f1_0.5": 0.6,
            "dev_f1_tuned": [0.65, 0.75],
            "best_epoch": 3,
            "train_seconds": 1.0,
        }
    )
    (tmp_path / "sweep-x").mkdir()
    summarise(runs, ["loss"]).to_csv(tmp_path / "sweep-x" / "summary.csv", index=False)
    html = sweep_citation(tmp_path).data
    assert "sweep-x" in html and "0.650 ± 0.071" in html and "0.700 ± 0.071" in html


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parent.parent / "configs").glob("sweep*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_sweep_loads_and_builds_a_valid_config_for_each_run(path):
    spec = SweepSpec.load(path)
    runs = [spec.config(s, seed, "runs") for s in spec.settings() for seed in spec.seeds]
    assert runs and len({c.run_id for c in runs}) == len(runs)  # every run its own folder
    assert all(all(getattr(c, k) == v for k, v in s.items()) for c, s in zip(runs[:: len(spec.seeds)], spec.settings()))
