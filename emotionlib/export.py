"""Exports of a trained run: a standard Hugging Face folder (pipeline-ready, no custom code) and ONNX."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from emotionlib.config import read_config
from emotionlib.data import LangSplit, training_parts
from emotionlib.metrics import scores
from emotionlib.predict import OnnxForward, batched_proba, decide, predict_proba
from emotionlib.encoders import REGISTRY
from emotionlib.model import is_ensemble, load_model, load_tokenizer, read_finished, read_metadata
from emotionlib.runs import (RunBusy, RunLayout, add_to_manifest, atomic_dir, atomic_path, check_replaceable, kind_of,
                             marked_parent, read_json, run_lock, sha256_of, write_json)

FORMATS = ("hf", "onnx")
ONNX_FILE = "model.onnx"
ONNX_META = "emotionlib.json"
INT8_FILE = "model-int8.onnx"
INT8_MAX_DROP = 0.005  # the validation macro-F1 (at 0.5) that int8 may cost; more, and the int8 graph is refused
CHECK_TEXTS = ["I can't believe how happy I feel!", "no", "The delivery was late again and nobody answered my calls."]


def export(run_dir: Path, fmt: str, out: Path) -> Path:
    """`python -m emotionlib export`: checked before any work, so that nothing of the user's is replaced. The
    folder `out` must lie outside the run (and not contain it), and be new or an earlier export of this format."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: must be one of {FORMATS}")
    run, dest = Path(run_dir).resolve(), Path(out).resolve()
    if dest == run or run in dest.parents or dest in run.parents:
        raise ValueError(f"--out {out}: lies inside the run {run_dir} or contains it; export to a folder outside it")
    if (inside := marked_parent(dest)) is not None:
        raise ValueError(f"--out {out}: lies inside {inside}, a {kind_of(inside)} emotionlib made; export elsewhere")
    read_finished(run)
    check_replaceable(out, f"export-{fmt}")
    return export_hf(run_dir, out) if fmt == "hf" else export_onnx(run_dir, out)


# --- Hugging Face ------------------------------------------------------------------------------------------

def refuse_ensemble(run_dir: Path, fmt: str) -> None:
    if is_ensemble(read_metadata(RunLayout(run_dir).model)):
        raise ValueError(f"{run_dir}: an ensemble has no single network to export to {fmt}; export its members' "
                         "runs, and combine them with the weights in its model/metadata.json")


def export_hf(run_dir: Path, out: Path) -> Path:
    """A folder that AutoModelForSequenceClassification and pipeline("text-classification") load as it is.

    Only `head: auto` runs are exported: the seed's linear layer on the raw first token is no standard class.
    """
    run_dir = Path(run_dir)
    refuse_ensemble(run_dir, "Hugging Face")
    model, tokenizer, meta = load_model(RunLayout(run_dir).model)
    if meta.get("head", "linear") != "auto":
        raise ValueError(f"{run_dir}: head 'linear' (one layer on the raw first token) has no standard transformers "
                         "class; train the run with head: auto (--set head=auto) to export it to Hugging Face")
    net = model.net
    net.config.thresholds = dict(zip(meta["labels"], meta["thresholds"]))  # read back as config.thresholds
    tokenizer.model_max_length = meta["max_length"]  # so truncation=True cuts where training did
    with atomic_dir(out, "export-hf") as tmp:
        net.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run_dir, meta), encoding="utf-8")
    return Path(out)


def model_card(run_dir: Path, meta: dict) -> str:
    """README.md of an export: what the model is, its measured metrics and where they came from."""

    cfg = read_config(run_dir)
    layout = RunLayout(run_dir)
    prov = read_json(layout.provenance)
    encoder = f" ({REGISTRY[meta['encoder']].description})" if meta["encoder"] in REGISTRY else ""
    data = "your own data" if cfg.own_data else "SemEval-2025 Task 11 Track A"
    metrics_path = layout.metrics
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification",
             "tags: [emotion, multi-label, emotionlib]", "---", "",
             f"# {run_dir.name}: multi-label emotion classifier", "",
             f"Fine-tuned by emotionlib from `{meta['encoder']}`{encoder} with the encoder's own sequence-"
             f"classification head on {', '.join(meta['languages'])} ({data})."
             " Each label is an independent sigmoid output (`problem_type: multi_label_classification`); a label is "
             "predicted when its probability reaches its threshold, tuned on the run's validation part "
             "(`config.thresholds`).", "",
             "| label | threshold |", "|---|---|"]
    lines += [f"| {lab} | {t:.2f} |" for lab, t in zip(meta["labels"], meta["thresholds"])]
    lines += ["", "## Use", "", "```python", "from transformers import pipeline", "",
              'pipe = pipeline("text-classification", model="<this folder>", top_k=None)',
              'scores = pipe(["I can\'t believe how happy I feel!"], truncation=True)[0]',
              "thresholds = pipe.model.config.thresholds",
              'labels = [s["label"] for s in scores if s["score"] >= thresholds[s["label"]]]', "```", "",
              "## Measured", ""]
    if metrics_path.is_file():
        m = read_json(metrics_path)
        h = m["headline"]
        lo, hi = h["macro_f1_ci95"]
        lines += [f"Headline: macro-F1 {h['macro_f1']:.4f} (95% bootstrap CI {lo:.4f}–{hi:.4f}) on `{h['set']}` at "
                  "the tuned thresholds.", "", "| set | n | macro-F1 at 0.5 | macro-F1 at tuned thresholds |",
                  "|---|---|---|---|"]
        lines += [f"| {key} | {s['n']} | {s['threshold_0.5']['macro_f1']:.4f} | {s['tuned_thresholds']['macro_f1']:.4f}"
                  + (" (in-sample) |" if s["split"] == "val" else " |") for key, s in m["sets"].items()]
    else:
        lines.append("The run was exported before it was evaluated: no metrics.")
    lines += ["", "## Provenance", "",
              f"- commit `{prov['commit']}`, seed {cfg.seed}, best epoch {meta.get('best_epoch')}",
              "- libraries: " + ", ".join(f"{k} {v}" for k, v in prov["libraries"].items()),
              "- data (sha256): " + ", ".join(f"`{k}` `{v[:16]}…`" for k, v in prov["data"].items()),
              "- configuration: " + ", ".join(f"`{k}={v}`" for k, v in cfg.to_dict().items()), ""]
    return "\n".join(lines)


# --- ONNX -----------------------------------------------------------------------------------------------

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
        raise ValueError(f"{layout.root}: its head has parts per language (head_per_language: "
                         f"{meta['head_per_language']}), which the ONNX graph (input_ids, attention_mask) cannot "
                         "select; predict with backend 'torch'")
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
        (tmp / ONNX_META).write_text(json.dumps(meta | {"model_sha256": weights_sha, "onnx_sha256": sha256_of(
            tmp / ONNX_FILE), "max_abs_diff_vs_torch": diff, "fusions": fusions}, indent=2), encoding="utf-8")
    return Path(out)


def _export_graph(model, tokenizer, max_length: int, path: Path, fuse: bool) -> None:
    """The classifier as an ONNX graph with dynamic batch and length. For fusing, the TorchScript exporter (its
    graphs are the ones ONNX Runtime's fusions match); otherwise, or if that fails, torch.export's."""
    enc = tokenizer(CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    args = (_Probabilities(model).eval(), (enc["input_ids"], enc["attention_mask"]), path)
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["probabilities"], external_data=False,
                 verbose=False)
    if fuse:
        try:
            axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                    "probabilities": {0: "batch"}}
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
    opt = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                         hidden_size=config.hidden_size)
    fused = path.with_name("fused.onnx")
    opt.save_model_to_file(str(fused))
    made = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    fused.with_suffix(".json").write_text(json.dumps(made), encoding="utf-8")
    return fused


def _check(folder: Path, tokenizer, meta: dict, reference: np.ndarray, graph: Path | None = None) -> float:
    """The largest difference between the graph's probabilities and PyTorch's on CHECK_TEXTS."""
    probs = batched_proba(OnnxForward(graph or folder / ONNX_FILE), tokenizer, CHECK_TEXTS, len(meta["labels"]),
                          meta["max_length"])
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


def ensure_onnx(run_dir: Path, int8: bool = False) -> Path:
    """The run's ONNX model under runs/<id>/onnx/, exported again when missing or made from other weights; with
    `int8`, its dynamic-int8 version beside it (`ensure_int8`)."""
    layout = RunLayout(run_dir)
    folder = layout.onnx
    weights = layout.weights
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained model in this run (train first)")
    try:
        with run_lock(layout):  # no other process writes the run: what a killed write left goes
            pass
    except RunBusy:
        pass
    if not graph_is_current(folder, sha256_of(weights)):  # missing, damaged, or made from other weights
        export_onnx(layout.root, folder)
    return ensure_int8(layout, folder / ONNX_FILE) if int8 else folder / ONNX_FILE


def graph_is_current(folder: Path, weights_sha256: str) -> bool:
    """True when folder's model.onnx is the one exported from these weights, byte for byte as recorded."""
    meta_path, graph = folder / ONNX_META, folder / ONNX_FILE
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError):
        return False
    return (graph.is_file() and meta.get("model_sha256") == weights_sha256
            and meta.get("onnx_sha256") == sha256_of(graph))


# --- int8 -------------------------------------------------------------------------------------------------

def quantize_onnx(graph: Path, out: Path, ffn_only: bool = False) -> Path:
    """Dynamic int8 (onnxruntime's quantize_dynamic): the weights of every encoder MatMul and fused Attention, or
    with `ffn_only` of the feed-forward MatMuls alone, per output channel in a 7-bit range (exact on CPUs without
    VNNI); activations are quantised on the fly. The classifier head (Gemm) stays float."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = None
    if ffn_only:
        nodes = [n.name for n in onnx.load(str(graph)).graph.node if n.op_type == "MatMul"
                 and n.name.endswith(("/intermediate/dense/MatMul", "/output/dense/MatMul"))
                 and "/attention/" not in n.name]
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for convolutional image models
    try:
        quantize_dynamic(graph, out, op_types_to_quantize=["MatMul", "Attention"], nodes_to_quantize=nodes,
                         per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         # the fused contrib ops defeat its shape inference; their tensors are float
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        logging.getLogger().setLevel(level)
    return Path(out)


def macro_f1_on(forward, tokenizer, meta: dict, parts: list[LangSplit], thresholds=0.5) -> float:
    """Macro-F1 of a backend on labelled sets (the mean over them), at `thresholds` (a number, or one per run label)."""
    return float(np.mean([set_macro_f1(batched_proba(forward, tokenizer, d.texts, len(meta["labels"]),
                                                     meta["max_length"]), meta, d, thresholds) for d in parts]))


def set_macro_f1(probs: np.ndarray, meta: dict, d: LangSplit, thresholds=0.5) -> float:
    """Macro-F1 of the run's probabilities (n, run labels) on one labelled set, over the labels they share."""
    labels = meta["labels"]
    thr = np.broadcast_to(np.asarray(thresholds, dtype=float), len(labels))
    shared = [lab for lab in labels if lab in d.labels]
    cols = [labels.index(lab) for lab in shared]
    gold = d.y[:, [d.labels.index(lab) for lab in shared]]
    return scores(gold, decide(probs[:, cols], thr[cols]), shared)["macro_f1"]


def ensure_int8(layout: RunLayout, graph: Path) -> Path:
    """The int8 graph beside the run's ONNX graph, made once and kept only if its validation macro-F1 (at 0.5, on
    the run's own validation part) is within INT8_MAX_DROP of the float graph's; both figures are recorded in
    emotionlib.json, and a refusal says them."""
    check_replaceable(graph.parent, "export-onnx")  # writes only into a folder export_onnx made
    meta_path, out = graph.with_name(ONNX_META), graph.with_name(INT8_FILE)
    meta = read_json(meta_path)
    record = meta.get("int8")
    if record is None or (record["kept"] and not out.is_file()):
        val = training_parts(read_config(layout.root), layout)[1]
        tokenizer = load_tokenizer(graph.parent)
        try:
            with atomic_path(out) as tmp:
                quantize_onnx(graph, tmp)
                f1 = {k: macro_f1_on(OnnxForward(g), tokenizer, meta, val)
                      for k, g in (("float", graph), ("int8", tmp))}
                record = {"val_macro_f1_0.5": f1, "max_drop": INT8_MAX_DROP,
                          "kept": f1["float"] - f1["int8"] <= INT8_MAX_DROP}
                if not record["kept"]:
                    raise _Refused
        except _Refused:
            pass  # atomic_path has removed the int8 graph
        write_json(meta_path, meta | {"int8": record})
        if record["kept"]:
            add_to_manifest(graph.parent, INT8_FILE)
    if not record["kept"]:
        f1 = record["val_macro_f1_0.5"]
        raise ValueError(f"{layout.root}: int8 costs {100 * (f1['float'] - f1['int8']):.1f} validation macro-F1 points "
                         f"({f1['float']:.4f} -> {f1['int8']:.4f}, at most {100 * INT8_MAX_DROP:g} allowed; "
                         f"{meta_path}); predict with backend 'onnx'")
    return out


class _Refused(Exception):
    """Raised inside atomic_path so that a refused int8 graph is never put in place."""
