"""bf16 against fp32 for a profile, seed by seed, on a CPU that multiplies bf16 natively (issue 45, item 1): the
network's validation figure, the stack's cross-fitted validation figure (a stacked profile) and the wall time of
each step, the two precisions run one after the other on the same machine.

    python experiments/precision/profiles.py --profile best-stack --seeds 42 43 44 --out experiments/precision

Each (seed, precision) is a run `prec-<profile>-<precision>-s<seed>` under --runs-dir, trained and (with `stack`)
stacked as notebook 02 does; a finished run is skipped, so an interrupted measurement continues where it stopped.
The feature pass of a stack is timed where it runs (the first seed of each precision; later seeds read the cache).
Writes <out>/<profile>.csv (one row a run) and prints the paired differences.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from emotionlib.config import load_config
from emotionlib.hardware import native_cpu_bf16
from emotionlib.runs import RunLayout, read_json
from emotionlib.provenance import provenance


def measure(profile: str, seed: int, precision: str, runs_dir: Path, features: str = "") -> dict:
    from emotionlib.combine.stack_fit import fit_stack
    from emotionlib.train import train

    # the network in `precision`; the stack's features in `features` (the same as the network's when empty)
    features = features or precision
    tag = precision if features == precision else f"{precision}-features-{features}"
    cfg = load_config(
        profile,
        {
            "seed": seed,
            "mixed_precision": precision,
            "feature_precision": features,
            "runs_dir": str(runs_dir),
            "run_id": f"prec-{Path(profile).stem}-{tag}-s{seed}",
        },
    )
    t0 = time.time()
    run = RunLayout(train(cfg))
    t1 = time.time()
    table = fit_stack(cfg)
    t2 = time.time()
    summary, log = read_json(run.train_summary), read_json(run.provenance)
    row = {
        "profile": Path(profile).stem,
        "seed": seed,
        "precision": read_json(run.metadata)["mixed_precision"],
        "feature_precision": features,
        "network_val_tuned": summary["best_val_macro_f1"],
        "train_wall_s": round(t1 - t0, 1),
        "epochs_run": summary["epochs_run"],
        "stack_wall_s": round(t2 - t1, 1),
        "cpu": log["hardware"]["cpu"],
    }
    if table is not None:
        row["stack_val_oof"] = float(table["stack_val_oof"].mean())
        row |= {c: float(table[c].mean()) for c in table.columns if c.endswith("_val_oof") and c != "stack_val_oof"}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="best-stack")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--runs-dir", type=Path, default=Path("runs"))
    ap.add_argument(
        "--features",
        default="",
        help="the stack's feature precision for both arms (default: each arm's own precision)",
    )
    ap.add_argument("--out", type=Path, default=Path("experiments/precision"))
    args = ap.parse_args()
    if not native_cpu_bf16():
        raise SystemExit("this CPU has no native bf16 (AVX512-BF16 or AMX): the comparison means nothing here")
    rows = []
    for seed in args.seeds:
        for precision in ("no", "bf16"):
            rows.append(measure(args.profile, seed, precision, args.runs_dir, args.features))
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    out = args.out / f"{Path(args.profile).stem}{'-features-' + args.features if args.features else ''}.csv"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    for metric in ("network_val_tuned", "stack_val_oof"):
        if metric not in rows[0]:
            continue
        by = {p: [r[metric] for r in rows if r["precision"] == p] for p in ("no", "bf16")}
        diffs = [b - a for a, b in zip(by["no"], by["bf16"])]
        print(
            f"{metric}: fp32 {statistics.mean(by['no']):.4f} ± {statistics.stdev(by['no']):.4f}, bf16 "
            f"{statistics.mean(by['bf16']):.4f} ± {statistics.stdev(by['bf16']):.4f}; bf16 - fp32 by seed "
            f"{' '.join(f'{100 * d:+.2f}' for d in diffs)} points, mean {100 * statistics.mean(diffs):+.2f}"
        )
    print(f"wrote {out}; {provenance()['hardware']['cpu']}")


if __name__ == "__main__":
    main()
