"""The stack's frozen-feature precision alone (issue 45, item 2): for finished stacked runs (the network fixed), the
English stack refitted exactly as `stack_fit.fit_language` fits it on EmbeddingGemma's features computed in each
precision, and its cross-fitted validation figure; plus each pass's texts/s, the precisions timed one after the
other on the same machine. Nothing is written into the runs.

    python experiments/precision/feature_precision.py --runs runs/prec-best-stack-no-s42 runs/prec-best-stack-no-s43 \
        runs/prec-best-stack-no-s44 --precisions no bf16 int8 --out experiments/precision/feature_precision.csv

The features of each precision are cached by text (their own cache key), so a second call is seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from emotionlib.combine.stack_fit import Members, fit_language
from emotionlib.data import cache_dir
from emotionlib.encoders import prompt_for, resolve_encoder
from emotionlib.features import LayerFeatures
from emotionlib.hardware import native_cpu_bf16
from emotionlib.model import load_model
from emotionlib.provenance import hardware
from emotionlib.run_config import read_config
from emotionlib.runs import RunLayout, atomic_write_text
from emotionlib.split import training_parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--precisions", nargs="+", default=["no", "bf16", "int8"])
    ap.add_argument("--out", type=Path, default=Path("experiments/precision/feature_precision.csv"))
    args = ap.parse_args()
    if "bf16" in args.precisions and not native_cpu_bf16():
        raise SystemExit("bf16 features need a CPU that multiplies bf16 natively (AVX512-BF16 or AMX)")
    rows, cpu = [], hardware()["cpu"]
    for run in args.runs:
        cfg = read_config(run)
        network, tokenizer, meta = load_model(RunLayout(run).model)
        (tr,), (va,) = training_parts(cfg, RunLayout(run))
        texts = list(tr.texts) + list(va.texts)
        model = cfg.feature_model or cfg.model
        for precision in args.precisions:
            feats = LayerFeatures(
                resolve_encoder(model),
                cfg.feature_layers,
                cfg.max_length,
                precision=precision,
                prompt=prompt_for(model),
            )
            t0 = time.time()
            cached = dict(zip(texts, feats(texts, cache_dir() / "features", cfg.eval_batch_size, progress=False)))
            seconds = time.time() - t0
            record, _ = fit_language(cfg, tr, va, Members(meta, network, tokenizer, cached=cached))
            rows.append(
                {
                    "run": run.name,
                    "seed": cfg.seed,
                    "feature_precision": precision,
                    "stack_val_oof": round(record["val_oof"], 4),
                    "features_lr_val_oof": round(record["members_val_oof"]["features_lr"], 4),
                    "w_features": record["weights"].get("features_lr"),
                    "c": record["features_lr_c"],
                    "feature_seconds": round(seconds, 1),
                    "texts": len(texts),
                    "cpu": cpu,
                }
            )
            print(rows[-1], flush=True)
    lines = [",".join(rows[0])] + [",".join(str(r[k]) for k in rows[0]) for r in rows]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    base = {r["run"]: r["stack_val_oof"] for r in rows if r["feature_precision"] == args.precisions[0]}
    for p in args.precisions[1:]:
        d = [100 * (r["stack_val_oof"] - base[r["run"]]) for r in rows if r["feature_precision"] == p]
        print(
            f"{p} - {args.precisions[0]}: stack cross-fitted validation {statistics.mean(d):+.2f} points "
            f"(per run {', '.join(f'{x:+.2f}' for x in d)})"
        )


if __name__ == "__main__":
    main()
