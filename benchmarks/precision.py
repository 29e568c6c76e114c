"""Is bf16 faster than fp32 on this CPU? Training steps and inference forwards of an encoder classifier under each,
interleaved in one process (nothing else should run). `mixed_precision: auto` picks bf16 only where the CPU has
native bf16 dot products (AVX512-BF16 or AMX); this measures why.

    python benchmarks/precision.py --encoders me5-small minilm --out bench

Per encoder: the seed's classifier (me5-small: mean pooling, the lowest 6 layers frozen, as its profile trains),
batches of 16 random token ids of length 48 (a typical BRIGHTER text), AdamW; seconds per training step and per
inference forward of 64 texts, the minimum over --reps rounds of 5. Writes <out>/precision.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from emotionlib.model import build_classifier, freeze_lower  # noqa: E402
from emotionlib.encoders import resolve_encoder  # noqa: E402
from emotionlib.runs import atomic_write_text, write_json  # noqa: E402
from emotionlib.provenance import provenance  # noqa: E402
from emotionlib.hardware import native_cpu_bf16  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=["me5-small", "minilm"])
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    torch.manual_seed(0)
    results = {}
    for name in args.encoders:
        model = build_classifier(
            resolve_encoder(name), list("abcdef"), pooling="mean" if name == "me5-small" else "cls"
        )
        freeze_lower(model, 6 if name == "me5-small" else 0)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        ids, y = torch.randint(5, 1000, (16, 48)), torch.rand(16, 6).round()
        big = torch.randint(5, 1000, (64, 48))

        def step(bf16: bool) -> None:
            model.train()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(ids, torch.ones_like(ids))
            torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y).backward()
            opt.step()
            opt.zero_grad()

        @torch.inference_mode()
        def forward(bf16: bool) -> None:
            model.eval()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(big, torch.ones_like(big))

        timings = {(kind, bf16): [] for kind in ("train step", "forward of 64") for bf16 in (False, True)}
        for bf16 in (False, True):  # warm-up
            step(bf16)
            forward(bf16)
        for _ in range(args.reps):
            for (kind, bf16), seconds in timings.items():
                fn = step if kind == "train step" else forward
                t0 = time.perf_counter()
                for _ in range(5):
                    fn(bf16)
                seconds.append((time.perf_counter() - t0) / 5)
        results[name] = {
            f"{kind} {'bf16' if bf16 else 'fp32'}": round(min(v), 4) for (kind, bf16), v in timings.items()
        }
        print(name, results[name], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    facts = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_cpu_bf16(),
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported(),
        "amx": torch.cpu._is_amx_tile_supported(),
        "threads": torch.get_num_threads(),
    }
    write_json(args.out / "precision.json", {"results": results, "cpu": facts, "provenance": provenance()})
    lines = [
        f"CPU: {facts}",
        "",
        "| encoder | train step fp32 (s) | train step bf16 (s) | bf16 / fp32 | forward of 64 fp32 (s) "
        "| forward of 64 bf16 (s) | bf16 / fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['train step fp32']} | {r['train step bf16']} | "
            f"{r['train step bf16'] / r['train step fp32']:.2f} | {r['forward of 64 fp32']} | "
            f"{r['forward of 64 bf16']} | {r['forward of 64 bf16'] / r['forward of 64 fp32']:.2f} |"
        )
    atomic_write_text(args.out / "precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
