"""The run graph: every run a run needs, derived from its config alone. Nothing is read, checked or trained here.

A run may need other runs before it is finished:

- `teacher: profile:<name>`: the teacher run `<run_id>-teacher` (with what it needs itself), before the run trains;
- `multilingual: per_language`: one run `<run_id>-<lang>` per training language, in place of the joint run;
- `stack_runs`: the stack's further networks `<run_id>-m<i>`, before the stack is fitted;
- `stack_network_folds: k`: k fold networks under `<run_id>/network-folds/` (a k-fold estimate), before the stack
  is fitted; the first of them is also the run's own network (adopted, not trained a second time: the network that
  LIME, the attention views and the network-alone line read);
- `stack`: the stack itself, fitted on the finished run and the runs above;
- `holdout_languages`: runs `<run_id>-without-<lang>`, each trained without one language and scored on it.

`needs(cfg)` lists these steps in the order they are built (dependencies first); `build.build` builds them,
`preflight.check` checks each one's config before anything is trained, and the modules that use a finished run
(the stack's fit, distillation, the cross-lingual table) find it with the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from emotionlib import data as D
from emotionlib.config import (
    DATA,
    FILES,
    SOURCE,
    SPLIT,
    STACK_FIELDS,
    Config,
    ConfigError,
    fields_of,
    load_config,
    member_overrides,
)

TEACHER_PREFIX = "profile:"
FOLDS_DIR = "network-folds"  # the stack's cross-fit ensemble, inside the stacked run's folder
KFOLD_SUMMARY = "kfold.json"  # a k-fold estimate's summary, in its folder
# what a teacher made from a profile shares with its student: the data and its files, the split (with the student's
# k-fold fold, so that a fold's teacher never saw the rows the fold holds out), the runs folder and the seed
TEACHER_SHARED = ("runs_dir", *fields_of(SOURCE, FILES, DATA, SPLIT), "seed")


@dataclass(frozen=True)
class Step:
    """One step of building a run: `kind` is train (one network run), kfold (a k-fold estimate of `folds` fold
    runs under config.run_dir), adopt (the run's network is its first fold network), stack (fit the stack of the
    finished run) or teacher (a whole run, built with its own steps); `name` says which (a stack member's name, a
    language)."""

    kind: str
    name: str
    config: Config
    folds: int = 0


def teacher_config(cfg: Config) -> Config | None:
    """The config of the teacher run a `profile:<name>` teacher trains (None for a teacher given as a folder)."""
    if not cfg.teacher.startswith(TEACHER_PREFIX):
        return None
    from emotionlib.encoders import defaults_for

    name = cfg.teacher[len(TEACHER_PREFIX) :].strip()
    values = {k: getattr(cfg, k) for k in TEACHER_SHARED} | {"run_id": f"{cfg.run_id}-teacher"}
    teacher = load_config(name, values)
    teacher = load_config(name, defaults_for(teacher.model) | values)  # as `--profile <name>` would run it
    if teacher.teacher:
        raise ConfigError(f"config field 'teacher': profile {name!r} is itself distilled; give a teacher that is not")
    return teacher


def teacher_dir(cfg: Config) -> Path:
    """Where the teacher run of a distilled config is (or will be, for a profile's)."""
    t = teacher_config(cfg)
    return Path(cfg.teacher).expanduser() if t is None else t.run_dir


def member_configs(cfg: Config) -> list[tuple[str, Config]]:
    """The further networks of cfg's stack: (member name, its run's config), named network-m1, network-m2, ..."""
    return [
        (f"network-m{i}", cfg.replace(run_id=f"{cfg.run_id}-m{i}", stack=[], stack_runs=[], **member_overrides(entry)))
        for i, entry in enumerate(cfg.stack_runs, start=1)
    ]


def network_config(cfg: Config) -> Config:
    """cfg's network alone: its stack's fields at their defaults (the config a stack's fold networks train with, the
    same as `emotionlib kfold` of the profile without its stack)."""
    defaults = {f.name: f.default for f in fields(Config) if f.name in STACK_FIELDS}
    return cfg.replace(**defaults)


def folds_config(cfg: Config) -> Config:
    """The k-fold estimate whose fold networks are the stack's network member: under the run's own folder."""
    return network_config(cfg).replace(runs_dir=str(cfg.run_dir), run_id=FOLDS_DIR)


def fold_config(cfg: Config, folds: int, i: int) -> Config:
    """Fold i of a k-fold estimate of cfg (whose folder is cfg.run_dir): trained without fold i of the training
    part."""
    return cfg.replace(runs_dir=str(cfg.run_dir), run_id=f"fold-{i}", cv_folds=folds, cv_fold=i)


def fold_runs(cfg: Config) -> list[Path]:
    """The stack's fold network runs (none without `stack_network_folds`)."""
    k = cfg.stack_network_folds
    return [cfg.run_dir / FOLDS_DIR / f"fold-{i}" for i in range(k)] if k else []


def holdout_config(cfg: Config, lang: str) -> Config:
    """The run `<run_id>-without-<lang>`: the same settings, trained without `lang`, scored on it only."""
    langs = D.train_languages(cfg)
    if lang not in langs or len(langs) < 2:
        raise ConfigError(
            f"config field 'holdout_languages': {lang!r} must be one of the run's several training "
            f"languages ({', '.join(langs)}), so that a run without it has data to train on"
        )
    return cfg.replace(
        run_id=f"{cfg.run_id}-without-{lang}",
        languages=[x for x in langs if x != lang],
        eval_languages=[lang],
        holdout_languages=[],
    )


def language_configs(cfg: Config) -> list[Config]:
    """The network runs of cfg: itself, or with `multilingual: per_language` one run `<run_id>-<lang>` per training
    language."""
    langs = D.train_languages(cfg)
    if cfg.multilingual == "joint" or len(langs) == 1:
        return [cfg]
    return [cfg.replace(run_id=f"{cfg.run_id}-{lang}", languages=[lang], multilingual="joint") for lang in langs]


def needs(cfg: Config) -> list[Step]:
    """Every step that builds cfg's run, in order: the teacher, the run's network(s), the stack's further runs and
    fold networks, the stack, the held-out-language runs."""
    steps = []
    if (teacher := teacher_config(cfg)) is not None:
        steps.append(Step("teacher", "teacher", teacher))
    if cfg.stack_network_folds:  # the fold networks first: the run's own network is the first of them
        steps.append(Step("kfold", FOLDS_DIR, folds_config(cfg), cfg.stack_network_folds))
        steps.append(Step("adopt", "fold-0", cfg))
    else:
        steps += [Step("train", c.run_id, c) for c in language_configs(cfg)]
    steps += [Step("train", name, member) for name, member in member_configs(cfg)]
    if cfg.stack:
        steps.append(Step("stack", "stack", cfg))
    steps += [Step("train", f"without-{lang}", holdout_config(cfg, lang)) for lang in cfg.holdout_languages]
    return steps


def further_runs(cfg: Config) -> list[tuple[str, Config]]:
    """The runs other than cfg's own that building it trains in folders of their own name beside it (stack members,
    held-out runs, a profile's teacher): (what it is, its config). Each folder is checked before anything is
    written."""
    out = [
        (f"config field 'stack_runs': entry {entry!r}", member)
        for entry, (_, member) in zip(cfg.stack_runs, member_configs(cfg))
    ]
    out += [
        (f"config field 'holdout_languages': {lang!r}", holdout_config(cfg, lang)) for lang in cfg.holdout_languages
    ]
    if (teacher := teacher_config(cfg)) is not None:
        out.append((f"config field 'teacher': {cfg.teacher}", teacher))
    return out
