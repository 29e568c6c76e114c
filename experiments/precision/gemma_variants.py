"""EmbeddingGemma-300M's frozen-feature pass in four arithmetics, timed interleaved in one process (best of 2), with
each one's distance from the fp32 features: fp32; bf16 autocast (what `feature_precision: bf16` runs); the weights
cast to bf16 (pure bf16); dynamic int8 linear layers (`feature_precision: int8`).

    python experiments/precision/gemma_variants.py --langs eng deu --rows 192

Needs `make gemma`. Prints texts/s, the relative Frobenius error of the features against fp32 and the smallest
per-text cosine. Quality in a stack is measured by experiments/precision/feature_precision.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from emotionlib import data as D
from emotionlib.encoders import gemma
from emotionlib.features import LayerFeatures
from emotionlib.provenance import hardware


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=["eng", "deu"])
    ap.add_argument("--rows", type=int, default=192, help="training texts per language")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    source = D.DataSource.resolve()
    texts = [gemma.PROMPT + t for lang in args.langs for t in source.load("train", lang).texts[: args.rows]]
    folder = gemma.find()
    pure = LayerFeatures(folder, gemma.FEATURE_LAYERS, 128, "no")
    pure.encoder.to(torch.bfloat16)
    variants = {
        "fp32": LayerFeatures(folder, gemma.FEATURE_LAYERS, 128, "no"),
        "bf16 autocast": LayerFeatures(folder, gemma.FEATURE_LAYERS, 128, "bf16"),
        "bf16 weights": pure,
        "int8 dynamic": LayerFeatures(folder, gemma.FEATURE_LAYERS, 128, "int8"),
    }
    compare(variants, texts, args.batch_size, args.langs)


def compare(variants: dict, texts: list[str], batch_size: int, langs: list[str], width: int = 14) -> None:
    """Each variant's pass over `texts`, interleaved rep by rep (best of 2), printed with its speed-up and its
    distance from the variant named "fp32"."""
    out, seconds = {}, {k: [] for k in variants}
    for _ in range(2):
        for name, f in variants.items():  # interleaved: the machine's drift hits every variant alike
            t0 = time.perf_counter()
            out[name] = f(texts, None, batch_size, progress=False)
            seconds[name].append(time.perf_counter() - t0)
    hw = hardware()
    print(
        f"{len(texts)} texts ({', '.join(langs)}), {hw['cpu']} {hw['cpu_features']}, {torch.get_num_threads()} threads"
    )
    ref = out["fp32"]
    for name in variants:
        a = out[name]
        cos = (a * ref).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(ref, axis=1)
        print(
            f"{name:{width}s} {len(texts) / min(seconds[name]):6.1f} texts/s  "
            f"{min(seconds['fp32']) / min(seconds[name]):4.2f}x fp32  "
            f"relative error {np.linalg.norm(a - ref) / np.linalg.norm(ref):.4f}  min cosine {cos.min():.5f}"
        )


if __name__ == "__main__":
    main()
