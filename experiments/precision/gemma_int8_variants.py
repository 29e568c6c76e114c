"""Which of EmbeddingGemma-300M's linear layers can multiply in int8 without moving the features: PyTorch's dynamic
int8 quantisation applied to all linear layers or to some, with weights quantised per tensor (what
`feature_precision: int8` runs today) or per output channel, each timed against fp32 interleaved in one process
(best of 2) with its distance from the fp32 features.

    python experiments/precision/gemma_int8_variants.py --langs eng deu --rows 96

Why: the per-tensor int8 features are 7.9 % away from fp32 and cost the English stack 3.4 points. Gemma's
feed-forward output projection (`down_proj`) reads the product of two projections, whose activations have far larger
outliers than the normed inputs of the other layers; one int8 scale per batch for them loses the small values. Needs
`make gemma`. Prints texts/s, the speed-up over fp32, the relative Frobenius error and the smallest per-text cosine.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

from emotionlib import data as D
from emotionlib.encoders import gemma
from emotionlib.features import LayerFeatures
from gemma_variants import compare  # the same interleaved timing and distances

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def quantised(base: LayerFeatures, per_channel: bool, keep: tuple[str, ...]) -> LayerFeatures:
    """A copy of `base` whose linear layers, except those whose name ends in one of `keep`, multiply in int8."""
    import copy

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    names = {
        name: qconfig
        for name, module in base.encoder.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith(keep)
    }
    other = copy.copy(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's notice that the API is moving to torchao
        other.encoder = quantize_dynamic(copy.deepcopy(base.encoder), names, dtype=torch.qint8)
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=["eng", "deu"])
    ap.add_argument("--rows", type=int, default=96, help="training texts per language")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    source = D.DataSource.resolve()
    texts = [gemma.PROMPT + t for lang in args.langs for t in source.load("train", lang).texts[: args.rows]]
    base = LayerFeatures(gemma.find(), gemma.FEATURE_LAYERS, 128, "no")
    variants = {
        "fp32": base,
        "int8 per tensor, all": quantised(base, False, ()),
        "int8 per channel, all": quantised(base, True, ()),
        "int8 per tensor, down fp32": quantised(base, False, ("down_proj",)),
        "int8 per channel, down fp32": quantised(base, True, ("down_proj",)),
        "int8 per channel, mlp only, down fp32": quantised(
            base, True, ("down_proj", "q_proj", "k_proj", "v_proj", "o_proj")
        ),
    }
    compare(variants, texts, args.batch_size, args.langs, width=40)


if __name__ == "__main__":
    main()
