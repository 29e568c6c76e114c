"""Building a run: every run of its graph (`graph.needs`) trained in order, dependencies first, each resumable.

This is the one module that trains runs for other runs: a profile's teacher before its student, the per-language
runs, the stack's further networks and fold networks (a k-fold estimate) before the stack is fitted, the held-out-
language runs. Each step is checked by the preflight before anything is written (`preflight.check` walks the
same graph), skipped when finished, and continued from its checkpoint when interrupted; the stack's fit, the
distillation targets and the cross-lingual table then only read finished runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emotionlib import data as D
from emotionlib import graph as G
from emotionlib import kfold
from emotionlib.combine.stack_fit import fit_stack
from emotionlib.config import Config, ConfigError
from emotionlib.preflight import check_estimate, check_graph
from emotionlib.runs import RunLayout, make_dir, read_json, remove_recorded, write_json
from emotionlib.provenance import provenance
from emotionlib.split import prepare_data
from emotionlib.train import adopt, train

log = logging.getLogger(__name__)


def build(cfg: Config, resume: bool = True, retrain: bool = False, checked: bool = False) -> list[Path]:
    """Train what cfg's run needs and the run itself (its network, or one a language), then fit its stack; return
    the run's network folders. `retrain` trains the run's own network(s) again, not the runs it needs. `checked`:
    the caller ran `preflight.check_graph(cfg)` just before (the CLI does, before it imports this module)."""
    if not checked:
        check_graph(cfg)  # every run of the graph, before the first is trained
    own = {c.run_id for c in G.language_configs(cfg)}
    steps = G.needs(cfg)
    for n, step in enumerate(steps, start=1):
        if len(steps) > 1:
            log.info(f"{cfg.run_id}: step {n} of {len(steps)}: {step.kind} {step.name}")
        if step.kind == "teacher":
            build(step.config)
        elif step.kind == "train":
            again = retrain and step.config.run_id in own
            train(step.config, resume=resume or step.config.run_id not in own, retrain=again)
        elif step.kind == "kfold":
            if Path(step.config.runs_dir) == cfg.run_dir:  # the stack's fold networks live in the run: claimed first
                prepare_data(cfg)
            estimate(step.config, step.folds)
        elif step.kind == "adopt":
            adopt(step.config, G.fold_runs(step.config)[0])
        elif step.kind == "stack":
            fit_stack(cfg)
    return [c.run_dir for c in G.language_configs(cfg)]


def estimate(cfg: Config, folds: int) -> Path:
    """A k-fold estimate of cfg: `folds` fold runs under cfg.run_dir, each built (its teacher first, for a distilled
    config) and scored on the fold it did not train on; writes and returns its kfold.json summary's folder."""
    for name in ("stack", "stack_runs", "holdout_languages"):
        if getattr(cfg, name):
            raise ConfigError(
                f"config field {name!r}: a k-fold estimate trains one network a fold; unset it "
                f"(got {list(getattr(cfg, name))!r})"
            )
    if cfg.multilingual == "per_language" and len(D.train_languages(cfg)) > 1:
        raise ConfigError(
            "config field 'multilingual': a k-fold estimate trains one joint network a fold; estimate "
            "each language with its own run_id"
        )
    check_estimate(cfg, folds)  # every check before the folder is made
    made = not Path(cfg.run_dir).exists()
    root = make_dir(cfg.run_dir, "kfold")  # refuses a folder emotionlib did not make as a k-fold estimate
    try:
        records = []
        for i in range(folds):
            log.info(f"{root}: fold {i + 1} of {folds}")
            fold = G.fold_config(cfg, folds, i)
            build(fold)  # a finished fold is skipped, an interrupted one continues from its checkpoint
            records.append(kfold.score_fold(fold))
    except BaseException:
        if made and not any((root / f"fold-{i}").exists() for i in range(folds)):
            remove_recorded(root)  # nothing trained yet: the folder this call made goes with the failure
        raise
    summary = kfold.summarise(records) | {
        "folds": folds,
        "config": cfg.to_dict(),
        "provenance": provenance({"data": read_json(RunLayout(root / "fold-0").split)["checksums"]}),
    }
    write_json(root / G.KFOLD_SUMMARY, summary)
    return root
