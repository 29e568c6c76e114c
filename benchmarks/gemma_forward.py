"""EmbeddingGemma-300M's frozen-feature pass: texts/s and its share of this machine's matrix-product ceiling.

    python benchmarks/gemma_forward.py --langs eng deu --rows 256 --reps 2 --out bench

The pass is the one the stack runs (`features.LayerFeatures`: length-sorted batches, mean-pooled layers 16 and 24,
the classification prompt, no cache). Its arithmetic is counted by torch's FlopCounterMode on the encoder (a row's
FLOPs fitted exactly as a + b*L + c*L^2 from three padded lengths, summed over the batches the pass makes); the
ceiling is the fastest fp32 `torch.mm` at the encoder's own feed-forward shapes (benchmarks/ceiling.py), measured in
the same process. Each attention kernel (sdpa, eager) and bf16 (only where the CPU multiplies bf16 natively) is timed
interleaved, rep by rep. Needs `make gemma`. Writes <out>/gemma_forward.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ceiling import LENGTHS, batches_flops, fp32_peak, sorted_order
from emotionlib import data as D
from emotionlib.encoders import gemma
from emotionlib.features import LayerFeatures
from emotionlib.runs import atomic_write_text, make_dir, write_json
from emotionlib.provenance import provenance
from emotionlib.hardware import native_cpu_bf16


def row_flops(encoder, length: int) -> int:
    ids = torch.full((1, length), 5, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=["eng", "deu"])
    ap.add_argument("--rows", type=int, default=256, help="training texts per language")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    source = D.DataSource.resolve()
    texts = [gemma.PROMPT + t for lang in args.langs for t in source.load("train", lang).texts[: args.rows]]
    folder = gemma.find()
    variants = {"sdpa fp32": ("sdpa", "no"), "eager fp32": ("eager", "no")}
    if native_cpu_bf16():
        variants["sdpa bf16"] = ("sdpa", "bf16")
    feats = {}
    for name, (attn, precision) in variants.items():
        f = LayerFeatures(folder, gemma.FEATURE_LAYERS, 128, precision)
        f.encoder.config._attn_implementation = attn
        feats[name] = f
    tok = feats["sdpa fp32"].tokenizer
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=128)["input_ids"]]
    encoder = feats["eager fp32"].encoder
    curve = np.polyfit(LENGTHS, [row_flops(encoder, n) for n in LENGTHS], 2)[::-1]
    flops = batches_flops(curve, lengths, sorted_order(lengths), args.batch_size)
    cfg = encoder.config
    peak = fp32_peak(cfg.hidden_size, cfg.intermediate_size, (512, 2048, 8192), args.reps) * 1e9
    # each variant against the ceiling of its own arithmetic: bf16 products where the CPU has them natively
    peaks = {"no": peak}
    if native_cpu_bf16():
        peaks["bf16"] = (
            fp32_peak(cfg.hidden_size, cfg.intermediate_size, (512, 2048, 8192), args.reps, dtype=torch.bfloat16) * 1e9
        )
    seconds = {name: [] for name in feats}
    for _ in range(args.reps):
        for name, f in feats.items():  # interleaved: the machine's drift hits every variant alike
            t0 = time.perf_counter()
            f(texts, None, args.batch_size, progress=False)
            seconds[name].append(time.perf_counter() - t0)
    rows = []
    for name, s in seconds.items():
        best = statistics.median(s)
        own = peaks[variants[name][1]]
        rows.append(
            {
                "variant": name,
                "seconds": round(best, 2),
                "texts_per_s": round(len(texts) / best, 1),
                "gflop_per_s": round(flops / best / 1e9, 1),
                "share_of_fp32_peak": round(flops / best / peak, 3),
                "share_of_own_peak": round(flops / best / own, 3),
            }
        )
    facts = {
        "texts": len(texts),
        "langs": args.langs,
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "gflop_per_text": round(flops / len(texts) / 1e9, 3),
        "fp32_peak_gflop_per_s": round(peak / 1e9, 1),
        "bf16_peak_gflop_per_s": round(peaks["bf16"] / 1e9, 1) if "bf16" in peaks else None,
        "threads": torch.get_num_threads(),
        "native_bf16": native_cpu_bf16(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    make_dir(args.out, "bench")
    write_json(args.out / "gemma_forward.json", provenance({"facts": facts, "rows": rows}))
    hw = provenance()["hardware"]
    lines = [
        f"EmbeddingGemma-300M feature pass on {hw['cpu']} ({facts['threads']} threads, "
        f"{facts['cpu_capability']}, native bf16: {facts['native_bf16']}): {facts['texts']} texts "
        f"({', '.join(args.langs)}), {facts['mean_tokens']} tokens on average, {facts['gflop_per_text']} GFLOP a "
        f"text; fastest fp32 product {facts['fp32_peak_gflop_per_s']} GFLOP/s"
        + (f", bf16 {facts['bf16_peak_gflop_per_s']} GFLOP/s" if facts["bf16_peak_gflop_per_s"] else ""),
        "",
        "| variant | seconds | texts/s | GFLOP/s | share of the fp32 peak | share of its own precision's peak |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {r['seconds']} | {r['texts_per_s']} | {r['gflop_per_s']} | "
        f"{100 * r['share_of_fp32_peak']:.0f}% | {100 * r['share_of_own_peak']:.0f}% |"
        for r in rows
    ]
    atomic_write_text(args.out / "gemma_forward.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
