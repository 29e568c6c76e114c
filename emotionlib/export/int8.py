"""The dynamic-int8 ONNX graph: onnxruntime's quantize_dynamic on the run's float graph, kept only if its validation
macro-F1 stays within INT8_MAX_DROP of the float graph's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotionlib.run_config import read_config
from emotionlib.data import LangSplit
from emotionlib.split import training_parts
from emotionlib.export.onnx_graph import ONNX_META
from emotionlib.metrics import scores
from emotionlib.model import load_tokenizer
from emotionlib.predict import OnnxForward, batched_proba, decide
from emotionlib.runs import RunLayout, add_to_manifest, atomic_path, check_replaceable, read_json, write_json

INT8_FILE = "model-int8.onnx"
INT8_MAX_DROP = 0.005  # the validation macro-F1 (at 0.5) that int8 may cost; more, and the int8 graph is refused


def quantize_onnx(graph: Path, out: Path, ffn_only: bool = False) -> Path:
    """Dynamic int8 (onnxruntime's quantize_dynamic): the weights of every encoder MatMul and fused Attention, or
    with `ffn_only` of the feed-forward MatMuls alone, per output channel in a 7-bit range (exact on CPUs without
    VNNI); activations are quantised on the fly. The classifier head (Gemm) stays float."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = None
    if ffn_only:
        nodes = [
            n.name
            for n in onnx.load(str(graph)).graph.node
            if n.op_type == "MatMul"
            and n.name.endswith(("/intermediate/dense/MatMul", "/output/dense/MatMul"))
            and "/attention/" not in n.name
        ]
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for convolutional image models
    try:
        quantize_dynamic(
            graph,
            out,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_quantize=nodes,
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            # the fused contrib ops defeat its shape inference; their tensors are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().setLevel(level)
    return Path(out)


def macro_f1_on(forward, tokenizer, meta: dict, parts: list[LangSplit], thresholds=0.5) -> float:
    """Macro-F1 of a backend on labelled sets (the mean over them), at `thresholds` (a number, or one per run label)."""
    return float(
        np.mean(
            [
                set_macro_f1(
                    batched_proba(forward, tokenizer, d.texts, len(meta["labels"]), meta["max_length"]),
                    meta,
                    d,
                    thresholds,
                )
                for d in parts
            ]
        )
    )


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
                f1 = {
                    k: macro_f1_on(OnnxForward(g), tokenizer, meta, val) for k, g in (("float", graph), ("int8", tmp))
                }
                record = {
                    "val_macro_f1_0.5": f1,
                    "max_drop": INT8_MAX_DROP,
                    "kept": f1["float"] - f1["int8"] <= INT8_MAX_DROP,
                }
                if not record["kept"]:
                    raise _Refused
        except _Refused:
            pass  # atomic_path has removed the int8 graph
        write_json(meta_path, meta | {"int8": record})
        if record["kept"]:
            add_to_manifest(graph.parent, INT8_FILE)
    if not record["kept"]:
        f1 = record["val_macro_f1_0.5"]
        raise ValueError(
            f"{layout.root}: int8 costs {100 * (f1['float'] - f1['int8']):.1f} validation macro-F1 points "
            f"({f1['float']:.4f} -> {f1['int8']:.4f}, at most {100 * INT8_MAX_DROP:g} allowed; "
            f"{meta_path}); predict with backend 'onnx'"
        )
    return out


class _Refused(Exception):
    """Raised inside atomic_path so that a refused int8 graph is never put in place."""
