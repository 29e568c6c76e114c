"""`predict` throughput of PyTorch, the plain ONNX graph and the graph with ONNX Runtime's
transformer fusions (attention, skip + layer norm, bias + GELU), on the English test file (2,765 texts).

    python benchmarks/onnx_fusions.py --encoders minilm me5-small --reps 3 --out bench

Throughput does not depend on the values of the weights, so each encoder gets the seed's classifier with an
untrained head (seed 0), saved as a run's model would be; both graphs come from `export.export_onnx` and pass its
check against PyTorch (largest probability difference <= 1e-4, also printed here over all 2,765 texts, so the
decisions, and the macro-F1 of a trained run, are those of PyTorch up to that difference). The three backends run
interleaved, rep by rep, in one process, batches of 64 texts sorted by length; onnxruntime and PyTorch use the
same thread count (--threads, default torch's). Figures: the median over reps. Writes
<out>/onnx_fusions.{json,md}.
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
from emotionlib.export import ONNX_FILE, ONNX_META, export_onnx  # noqa: E402
from emotionlib.model import EmotionClassifier, load_encoder, load_tokenizer, save_model  # noqa: E402
from emotionlib.encoders import describe as _describe, resolve_encoder  # noqa: E402
from emotionlib.predict import OnnxForward, batched_proba, predict_proba  # noqa: E402
from emotionlib.runs import atomic_write_text, read_json, write_json  # noqa: E402
from emotionlib.provenance import provenance  # noqa: E402

LABELS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=["minilm", "me5-small"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = D.DataSource.resolve().load("test", "eng").texts
    results = {}
    for name in args.encoders:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            folder = resolve_encoder(name)
            tok = load_tokenizer(folder)
            torch.manual_seed(0)
            pooling = "mean" if name == "me5-small" else "cls"
            model = EmotionClassifier(load_encoder(folder), len(LABELS), pooling).eval()
            save_model(
                model,
                tok,
                run / "model",
                {"labels": LABELS, "thresholds": [0.5] * 6, "max_length": 128, "pooling": pooling},
            )
            graphs = {}
            for fuse in (False, True):
                export_onnx(run, Path(tmp) / f"onnx-{fuse}", fuse=fuse)
                graphs[fuse] = Path(tmp) / f"onnx-{fuse}"
            fusions = read_json(graphs[True] / ONNX_META)["fusions"]
            backends = {
                "pytorch": lambda: predict_proba(model, tok, texts, 128, 64),
                "onnx": lambda f=OnnxForward(graphs[False] / ONNX_FILE, args.threads): batched_proba(
                    f, tok, texts, len(LABELS), 128, 64
                ),
                "onnx fused": lambda f=OnnxForward(graphs[True] / ONNX_FILE, args.threads): batched_proba(
                    f, tok, texts, len(LABELS), 128, 64
                ),
            }
            seconds = {k: [] for k in backends}
            probs = {k: fn() for k, fn in backends.items()}  # warm-up, and the outputs compared
            for _ in range(args.reps):
                for k, fn in backends.items():
                    t0 = time.perf_counter()
                    fn()
                    seconds[k].append(time.perf_counter() - t0)
            results[name] = {
                "encoder": _describe(name),
                "fusions": fusions,
                "texts_per_second": {k: round(len(texts) / statistics.median(v), 1) for k, v in seconds.items()},
                "seconds": seconds,
                "max_abs_diff_vs_pytorch": {k: float(np.abs(p - probs["pytorch"]).max()) for k, p in probs.items()},
            }
            print(
                name, results[name]["texts_per_second"], results[name]["max_abs_diff_vs_pytorch"], fusions, flush=True
            )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "onnx_fusions.json",
        {
            "results": results,
            "threads": args.threads,
            "n_texts": len(texts),
            "args": vars(args) | {"out": str(args.out)},
            "provenance": provenance(),
        },
    )
    lines = [
        f"English test file, {len(texts)} texts, batches of 64 sorted by length, {args.threads} threads, median "
        f"of {args.reps} interleaved reps",
        "",
        "| encoder | PyTorch texts/s | ONNX texts/s | ONNX fused texts/s | fused / PyTorch | fused / ONNX | "
        "fusions | max diff (fused vs PyTorch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        t = r["texts_per_second"]
        lines.append(
            f"| {name} | {t['pytorch']} | {t['onnx']} | {t['onnx fused']} | "
            f"{t['onnx fused'] / t['pytorch']:.2f} | {t['onnx fused'] / t['onnx']:.2f} | "
            f"{', '.join(f'{k} {v}' for k, v in r['fusions'].items())} | "
            f"{r['max_abs_diff_vs_pytorch']['onnx fused']:.1e} |"
        )
    atomic_write_text(args.out / "onnx_fusions.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
