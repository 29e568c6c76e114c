"""The arithmetic that benchmarks/ceiling.py bounds the machine with: FLOPs counted by torch, fitted per length."""

import importlib.util
import os
from pathlib import Path

import pytest

from emotionlib.model import build_classifier, freeze_lower
from emotionlib.encoders import resolve_encoder

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(name: str):
    """A script of the speed suite (benchmarks/) or of an experiment (experiments/<name>/<name>.py)."""
    path = ROOT / "benchmarks" / f"{name}.py"
    if not path.is_file():
        path = ROOT / "experiments" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rows_flops_are_quadratic_in_its_length_and_frozen_layers_cost_no_backward():
    ceiling = load_benchmark("ceiling")
    model = build_classifier(resolve_encoder("tiny-xlmr"), ["a", "b"], attn_implementation="eager")
    curve = ceiling.flop_curve(model, train=False)
    assert ceiling.row_flops(model, 70, train=False) == pytest.approx(curve @ [1, 70, 70**2], rel=1e-6)
    assert curve[2] > 0  # attention's scores grow with the square of the length
    # a batch costs its rows at the padded length of its longest row
    assert ceiling.batches_flops(curve, [10, 30, 20], [0, 1, 2], 2) == pytest.approx(
        2 * (curve @ [1, 30, 900]) + curve @ [1, 20, 400]
    )
    full = ceiling.row_flops(model, 32, train=True)
    freeze_lower(model, 1)
    frozen = ceiling.row_flops(model, 32, train=True)
    forward = ceiling.row_flops(model, 32, train=False)
    assert forward < frozen < full and full == pytest.approx(3 * forward, rel=0.15)


def test_the_ceiling_counts_the_batches_a_job_really_scored_and_a_bare_encoders_forward():
    ceiling = load_benchmark("ceiling")
    from emotionlib.model import load_tokenizer
    from emotionlib.predict import batched_proba, torch_forward

    folder = resolve_encoder("tiny-xlmr")
    model = build_classifier(folder, ["a", "b"], attn_implementation="eager").eval()
    tok = load_tokenizer(folder)
    texts = ["a b c d e f g h", "a", "a b c", "a b c d e f g h i j k l", "a b"]
    shapes = ceiling.Shapes(torch_forward(model))
    batched_proba(shapes, tok, texts, 2, 128, batch_size=2)
    lengths = [len(x) for x in tok(texts)["input_ids"]]
    assert [n for n, _ in shapes.seen] == [2, 2, 1]  # every text scored once, in length-sorted batches
    curve = ceiling.flop_curve(model, train=False)
    assert shapes.flops(curve) == pytest.approx(ceiling.batches_flops(curve, lengths, ceiling.sorted_order(lengths), 2))
    # the frozen-feature pass runs the encoder alone: less than the classifier with its head, more than nothing
    bare = ceiling.flop_curve(model, False, lambda ids, mask: model.encoder(input_ids=ids, attention_mask=mask)[0])
    assert 0 < bare @ [1, 20, 400] < curve @ [1, 20, 400] * 1.0001


def test_a_stack_members_set_names_its_fold_seed_and_group_or_takes_every_fold_seed():
    parse = load_benchmark("stack_members").parse_set
    assert parse("0 1  tfidf_lr", [42, 43]) == ("0 1 tfidf_lr", [42, 43], ["0", "1", "tfidf_lr"])
    assert parse("43: 3 features_lr", [42]) == ("3 features_lr", [43], ["3", "features_lr"])
    assert parse("own stack 44: 6 7", [42]) == ("own stack", [44], ["6", "7"])
    with pytest.raises(SystemExit, match="whole number"):
        parse("stack: 0 1", [42])


MAPPED_BYTES = """
import ctypes, importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("levers", sys.argv[2])
levers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(levers)
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
if sys.argv[1] == "reuse":
    assert levers.reuse_freed_memory()
before = libc.mallinfo2().hblkhd
g = torch.zeros(10 << 20)  # 40 MB, the size of MiniLM's word-embedding gradient
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only")
def test_the_reused_memory_lever_serves_a_large_gradient_from_the_heap_not_fresh_pages():
    """By default glibc maps a 40 MB block afresh (the kernel zeroes and faults in its pages); with the lever the
    block comes from the heap the process keeps."""
    import subprocess
    import sys

    path = str(ROOT / "benchmarks" / "levers.py")
    mapped = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", MAPPED_BYTES, mode, path], capture_output=True, text=True, check=True
            ).stdout
        )
        for mode in ("default", "reuse")
    }
    assert mapped["default"] >= 40 << 20 and mapped["reuse"] == 0


@pytest.mark.xdist_group("test_combine_langstack")  # the stacked run is made once, on that group's worker
def test_the_stack_ceiling_counts_each_encoders_batches_once(stacked_run, monkeypatch):
    """`predict` of a stack: the feature encoder's batches and those of each network the stack ran, each text once."""
    ceiling = load_benchmark("ceiling")
    from emotionlib.combine.langstack import LanguageStack
    from emotionlib.model import load_encoder

    cfg, _ = stacked_run
    # the tiny random encoder's members may weigh 0 beside TF-IDF: every member runs, as a fitted Gemma stack's do
    real = LanguageStack.member_proba
    monkeypatch.setattr(LanguageStack, "member_proba", lambda *a, **k: real(*a, **(k | {"weighted_only": False})))
    texts = ["so happy today", "what a sad and long day it was", "a", "nothing"]
    r = ceiling.stack_predict_ceiling(cfg.run_dir, texts, reps=2, lang="arq")
    assert r["texts"] == 4 and r["feature_precision"] == "no" and r["peak_precision"] == "fp32"
    assert set(r["flop_shares"]) == {"features", "network"}
    assert sum(r["flop_shares"].values()) == pytest.approx(1, abs=0.01) and 0 < r["share_of_peak"]
    # the feature pass: one length-sorted batch of four texts at its longest text's length, once a rep
    encoder = load_encoder(resolve_encoder(cfg.model), "eager")
    curve = ceiling.flop_curve(encoder, False, lambda ids, mask: encoder(input_ids=ids, attention_mask=mask)[0])
    from emotionlib.model import load_tokenizer

    lengths = [len(x) for x in load_tokenizer(resolve_encoder(cfg.model))(texts)["input_ids"]]
    expected = ceiling.batches_flops(curve, lengths, ceiling.sorted_order(lengths), 64)
    assert r["flops"]["features"] == pytest.approx(expected, rel=1e-3)
    # the network encodes the same texts itself (its head does not read the features): its classifier's FLOPs
    from emotionlib.model import load_model
    from emotionlib.runs import RunLayout

    net_curve = ceiling.flop_curve(load_model(RunLayout(cfg.run_dir).model, "eager")[0], False)
    assert r["flops"]["network"] == pytest.approx(
        ceiling.batches_flops(net_curve, lengths, ceiling.sorted_order(lengths), 64), rel=1e-3
    )
