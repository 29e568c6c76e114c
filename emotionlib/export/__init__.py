"""Exports of a trained run, one module a format: `hf` (a standard Hugging Face folder, pipeline-ready, no custom
code), `onnx_graph` (ONNX, checked against PyTorch, with ONNX Runtime's fusions) and `int8` (its dynamic-int8
version, kept only within 0.5 validation macro-F1 points of the float graph)."""

from __future__ import annotations

from pathlib import Path

from emotionlib.export.hf import export_hf, model_card, refuse_ensemble
from emotionlib.export.int8 import INT8_FILE, ensure_int8, macro_f1_on, quantize_onnx, set_macro_f1
from emotionlib.export.onnx_graph import CHECK_TEXTS, ONNX_FILE, ONNX_META, ensure_graph, export_onnx, graph_is_current
from emotionlib.metadata import read_finished
from emotionlib.runs import RunLayout, check_replaceable, kind_of, marked_parent, run_lock

FORMATS = ("hf", "onnx")
__all__ = [
    "FORMATS",
    "CHECK_TEXTS",
    "INT8_FILE",
    "ONNX_FILE",
    "ONNX_META",
    "export",
    "export_hf",
    "export_onnx",
    "ensure_graph",
    "ensure_onnx",
    "ensure_int8",
    "graph_is_current",
    "macro_f1_on",
    "model_card",
    "quantize_onnx",
    "refuse_ensemble",
    "set_macro_f1",
]


def ensure_onnx(run_dir: Path, int8: bool = False) -> Path:
    """The run's ONNX model (`onnx_graph.ensure_graph`), exported again when missing or made from other weights;
    with `int8`, its dynamic-int8 version beside it (`int8.ensure_int8`), both under the run's lock."""
    if not int8:
        return ensure_graph(run_dir)
    layout = RunLayout(run_dir)
    with run_lock(layout):  # re-entrant within this process: the graph's build takes it too
        return ensure_int8(layout, ensure_graph(layout.root))


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
