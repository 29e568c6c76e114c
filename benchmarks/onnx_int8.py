"""int8 inference that keeps quality, on trained runs.

    python benchmarks/onnx_int8.py --runs runs/<minilm run> runs/<mpnet run> runs/<me5-small run> --reps 3 --out bench

For each run: PyTorch, the run's fused ONNX graph (`export.ensure_onnx`), and two dynamic-int8 versions of it made
by `export.quantize_onnx` (onnxruntime's `quantize_dynamic`: weights int8 per output channel, 7-bit range for CPUs
without VNNI, activations quantised on the fly; `--backend onnx-int8` is the first):
- `int8`: every encoder matrix product (the fused attention's Q/K/V projection, attention output, both FFN layers);
- `int8 ffn`: the two FFN layers of each block only (two thirds of the encoder's weights), attention left in fp32.
The classifier head (Gemm) stays fp32 in both. Quality: validation macro-F1 at 0.5 (the run's own 553-row part:
the thresholds are not fitted on it) and dev macro-F1 at the run's tuned thresholds, for every backend, with the
largest probability difference from PyTorch. Speed: texts/s on the English test file (2,765 texts, batches of 64
sorted by length), backends interleaved rep by rep in one process, onnxruntime at torch's thread count; the median
over reps. Writes <out>/onnx_int8.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from emotionlib import data as D  # noqa: E402
from emotionlib.config import load_config  # noqa: E402
from emotionlib.evaluate import eval_sets  # noqa: E402
from emotionlib.export import ensure_onnx, quantize_onnx, set_macro_f1  # noqa: E402
from emotionlib.model import load_model  # noqa: E402
from emotionlib.encoders import describe as _describe  # noqa: E402
from emotionlib.predict import OnnxForward, batched_proba, torch_forward  # noqa: E402
from emotionlib.runs import RunLayout, atomic_write_text, write_json  # noqa: E402
from emotionlib.provenance import provenance  # noqa: E402


def quality(forward, tok, meta: dict, sets: list) -> dict:
    """Validation macro-F1 at 0.5, dev macro-F1 at the run's tuned thresholds, and the probabilities."""
    out = {}
    for d in sets:
        probs = batched_proba(forward, tok, d.texts, len(meta["labels"]), meta["max_length"], 64)
        thresholds = 0.5 if d.split == "val" else meta["thresholds"]
        out[d.split] = {"macro_f1": set_macro_f1(probs, meta, d, thresholds), "probs": probs}
    return out


def bench_run(run: Path, texts: list[str], reps: int, threads: int, tmp: Path) -> dict:
    layout = RunLayout(run)
    cfg = load_config(layout.config)
    model, tok, meta = load_model(layout.model)
    fused = ensure_onnx(run)
    graphs = {
        "onnx fused": fused,
        "int8": quantize_onnx(fused, tmp / "int8.onnx"),
        "int8 ffn": quantize_onnx(fused, tmp / "int8-ffn.onnx", ffn_only=True),
    }
    forwards = {
        "pytorch": torch_forward(model, meta.get("mixed_precision", "no")),
        **{k: OnnxForward(p, threads) for k, p in graphs.items()},
    }
    sets = eval_sets(cfg, layout, ["val", "dev"], ["eng"])
    q = {k: quality(f, tok, meta, sets) for k, f in forwards.items()}
    seconds = {k: [] for k in forwards}
    for _ in range(reps):
        for k, f in forwards.items():
            t0 = time.perf_counter()
            batched_proba(f, tok, texts, len(meta["labels"]), meta["max_length"], 64)
            seconds[k].append(time.perf_counter() - t0)
    return {
        "run": str(run),
        "encoder": _describe(cfg.model),
        "mb": {k: round(p.stat().st_size / 2**20, 1) for k, p in graphs.items()},
        "texts_per_second": {k: round(len(texts) / statistics.median(v), 1) for k, v in seconds.items()},
        "seconds": seconds,
        "val_f1_0.5": {k: round(v["val"]["macro_f1"], 4) for k, v in q.items()},
        "dev_f1_tuned": {k: round(v["dev"]["macro_f1"], 4) for k, v in q.items()},
        "max_abs_diff_vs_pytorch": {
            k: float(max(np.abs(v[s]["probs"] - q["pytorch"][s]["probs"]).max() for s in v)) for k, v in q.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True, help="trained English runs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = D.DataSource.resolve().load("test", "eng").texts
    results = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(bench_run(run, texts, args.reps, args.threads, Path(tmp)))
        r = results[-1]
        print(run, r["texts_per_second"], r["val_f1_0.5"], r["dev_f1_tuned"], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "onnx_int8.json",
        {
            "results": results,
            "threads": args.threads,
            "n_texts": len(texts),
            "args": vars(args) | {"out": str(args.out), "runs": [str(r) for r in args.runs]},
            "provenance": provenance(),
        },
    )
    lines = [
        f"English test file, {len(texts)} texts, batches of 64 sorted by length, {args.threads} threads, median "
        f"of {args.reps} interleaved reps; validation macro-F1 at 0.5, dev at the run's tuned thresholds",
        "",
        "| run | encoder | backend | texts/s | x PyTorch | val F1 @0.5 | dev F1 tuned | max diff | MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r["texts_per_second"]
        for k in t:
            lines.append(
                f"| {Path(r['run']).name} | {r['encoder']} | {k} | {t[k]} | {t[k] / t['pytorch']:.2f} | "
                f"{r['val_f1_0.5'][k]:.4f} | {r['dev_f1_tuned'][k]:.4f} | "
                f"{r['max_abs_diff_vs_pytorch'][k]:.1e} | {r['mb'].get(k, '')} |"
            )
    atomic_write_text(args.out / "onnx_int8.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
