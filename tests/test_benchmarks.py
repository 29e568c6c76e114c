"""The arithmetic that benchmarks/ceiling.py bounds the machine with: FLOPs counted by torch, fitted per length."""
import importlib.util
from pathlib import Path

import pytest

from emotionlib.model import build_classifier, freeze_lower, resolve_encoder

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rows_flops_are_quadratic_in_its_length_and_frozen_layers_cost_no_backward():
    ceiling = load_benchmark("ceiling")
    model = build_classifier(resolve_encoder("tiny-xlmr"), ["a", "b"], attn_implementation="eager")
    curve = ceiling.flop_curve(model, train=False)
    assert ceiling.row_flops(model, 70, train=False) == pytest.approx(curve @ [1, 70, 70 ** 2], rel=1e-6)
    assert curve[2] > 0  # attention's scores grow with the square of the length
    # a batch costs its rows at the padded length of its longest row
    assert ceiling.batches_flops(curve, [10, 30, 20], [0, 1, 2], 2) == pytest.approx(
        2 * (curve @ [1, 30, 900]) + curve @ [1, 20, 400])
    full = ceiling.row_flops(model, 32, train=True)
    freeze_lower(model, 1)
    frozen = ceiling.row_flops(model, 32, train=True)
    forward = ceiling.row_flops(model, 32, train=False)
    assert forward < frozen < full and full == pytest.approx(3 * forward, rel=0.15)
