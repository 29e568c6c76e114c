"""The ONNX export: model.onnx (inputs input_ids and attention_mask with dynamic batch and length, output
probabilities), fused where ONNX Runtime's transformer optimizer recognises the layers, checked against PyTorch."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from emotionlib.export.hf import refuse_ensemble
from emotionlib.model import load_model
from emotionlib.predict import OnnxForward, batched_proba, predict_proba
from emotionlib.runs import RunBusy, RunLayout, atomic_dir, read_json, run_lock, sha256_of

ONNX_FILE = "model.onnx"
ONNX_META = "emotionlib.json"
CHECK_TEXTS = ["I can't believe how happy I feel!", "no", "The delivery was late again and nobody answered my calls."]


class _Probabilities(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return torch.sigmoid(self.model(input_ids, attention_mask).float())


def export_onnx(run_dir: Path, out: Path, tolerance: float = 1e-4, fuse: bool = True) -> Path:
    """model.onnx (inputs input_ids and attention_mask with dynamic batch and length, output probabilities),
    the tokenizer and the run's labels and thresholds; checked against PyTorch before it is put in place.

    With `fuse`, ONNX Runtime's transformer optimizer fuses what it recognises of each layer (attention, skip +
    layer norm, bias + GELU) into single kernels; the fused graph is kept only if it passes the same check, and
    emotionlib.json records which fusions were made."""
    layout = RunLayout(run_dir)
    refuse_ensemble(layout.root, "ONNX")
    # eager attention: the graph of the explicit softmax(QK^T)V is the one ONNX Runtime's attention fusion knows
    model, tokenizer, meta = load_model(layout.model, attn_implementation="eager")
    if meta.get("head_per_language", "none") != "none":
        raise ValueError(
            f"{layout.root}: its head has parts per language (head_per_language: "
            f"{meta['head_per_language']}), which the ONNX graph (input_ids, attention_mask) cannot "
            "select; predict with backend 'torch'"
        )
    reference = predict_proba(model, tokenizer, CHECK_TEXTS, meta["max_length"])
    with atomic_dir(out, "export-onnx") as tmp, _quiet_exporter():
        _export_graph(model, tokenizer, meta["max_length"], tmp / ONNX_FILE, fuse)
        tokenizer.save_pretrained(tmp)
        diff, fusions = _check(tmp, tokenizer, meta, reference), {}
        if fuse:
            fused = _fuse(tmp / ONNX_FILE, model)
            fused_diff = _check(tmp, tokenizer, meta, reference, fused)
            if fused_diff <= tolerance:  # else the plain graph stays: a fusion must not change the predictions
                fused.replace(tmp / ONNX_FILE)
                diff, fusions = fused_diff, read_json(fused.with_suffix(".json"))
            fused.unlink(missing_ok=True)
            fused.with_suffix(".json").unlink(missing_ok=True)
        if diff > tolerance:
            raise RuntimeError(f"ONNX export of {run_dir} differs from PyTorch by {diff:.2e} (> {tolerance:g})")
        weights_sha = sha256_of(layout.weights)
        (tmp / ONNX_META).write_text(
            json.dumps(
                meta
                | {
                    "model_sha256": weights_sha,
                    "onnx_sha256": sha256_of(tmp / ONNX_FILE),
                    "max_abs_diff_vs_torch": diff,
                    "fusions": fusions,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return Path(out)


def _export_graph(model, tokenizer, max_length: int, path: Path, fuse: bool) -> None:
    """The classifier as an ONNX graph with dynamic batch and length. For fusing, the TorchScript exporter (its
    graphs are the ones ONNX Runtime's fusions match); otherwise, or if that fails, torch.export's."""
    enc = tokenizer(CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    args = (_Probabilities(model).eval(), (enc["input_ids"], enc["attention_mask"]), path)
    names = dict(
        input_names=["input_ids", "attention_mask"], output_names=["probabilities"], external_data=False, verbose=False
    )
    if fuse:
        try:
            axes = {
                "input_ids": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "probabilities": {0: "batch"},
            }
            torch.onnx.export(*args, dynamic_axes=axes, dynamo=False, opset_version=17, **names)
            return
        except Exception:  # noqa: BLE001 - an encoder the old exporter cannot trace: the new one below
            path.unlink(missing_ok=True)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=max_length)
    torch.onnx.export(*args, dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}), dynamo=True, **names)


def _fuse(path: Path, model) -> Path:
    """The graph with ONNX Runtime's transformer fusions, beside it (and the count of each fused operator)."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = model.encoder.config
    opt = optimize_model(
        str(path), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
    )
    fused = path.with_name("fused.onnx")
    opt.save_model_to_file(str(fused))
    made = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    fused.with_suffix(".json").write_text(json.dumps(made), encoding="utf-8")
    return fused


def _check(folder: Path, tokenizer, meta: dict, reference: np.ndarray, graph: Path | None = None) -> float:
    """The largest difference between the graph's probabilities and PyTorch's on CHECK_TEXTS."""
    probs = batched_proba(
        OnnxForward(graph or folder / ONNX_FILE), tokenizer, CHECK_TEXTS, len(meta["labels"]), meta["max_length"]
    )
    return float(np.abs(probs - reference).max())


@contextmanager
def _quiet_exporter():
    """The exporter's progress lines and warnings (e.g. torchvision absent) say nothing about this model."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def ensure_graph(run_dir: Path) -> Path:
    """The run's ONNX model under runs/<id>/onnx/, exported again when missing or made from other weights."""
    layout = RunLayout(run_dir)
    folder = layout.onnx
    weights = layout.weights
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained model in this run (train first)")
    try:
        with run_lock(layout):  # no other process writes the run: what a killed write left goes
            pass
    except RunBusy:
        pass  # another process writes the run now: its temporaries are its own
    sha = sha256_of(weights)
    if graph_is_current(folder, sha):
        return folder / ONNX_FILE
    # the build writes into the run: under its lock, so that no other process (an evaluation, a second predict)
    # clears its temporaries or builds beside it; what a killed build left goes when the lock is taken
    with run_lock(layout):
        if not graph_is_current(folder, sha):  # missing, damaged, or made from other weights
            export_onnx(layout.root, folder)
        return folder / ONNX_FILE


def graph_is_current(folder: Path, weights_sha256: str) -> bool:
    """True when folder's model.onnx is the one exported from these weights, byte for byte as recorded."""
    meta_path, graph = folder / ONNX_META, folder / ONNX_FILE
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError):
        return False
    return (
        graph.is_file() and meta.get("model_sha256") == weights_sha256 and meta.get("onnx_sha256") == sha256_of(graph)
    )
