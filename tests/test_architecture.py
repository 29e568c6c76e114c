"""The package's structure, read from its source: every import (function-level ones included, since an import inside
a function hides a circle but does not break it) goes down the layers, in the order data flows; inference never
reaches training; no import circle."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emotionlib"

# bottom to top: a module may import only modules of its own layer listed before it, or of a lower layer
LAYERS = [
    ["provenance", "runs", "run_records", "config", "log", "hardware", "losses", "metrics", "encoders.base"],
    [
        "run_config",
        "data",
        "split",
        "dataset",
        "predict",
        "metadata",
        "prediction_files",
        "model",
        "plots",
        "checkpoints",
    ],
    [
        "encoders.hub",
        "encoders.minilm",
        "encoders.tiny_xlmr",
        "encoders.me5",
        "encoders.mpnet",
        "encoders.gemma",
        "encoders",
    ],
    ["baseline", "augment", "sampling", "optim", "features", "transfer", "graph", "preflight"],
    [
        "combine",
        "combine.weights",
        "combine.langstack",
        "export.hf",
        "export.onnx_graph",
        "export.int8",
        "export",
        "classifier",
    ],
    ["combine.stack_fit", "combine.ensemble", "kfold", "compare"],
    ["distill", "train", "build"],
    ["evaluate", "interpret", "crosslingual", "report", "sweep", "pipeline", "cli", "__main__", ""],
]
ORDER = [m for layer in LAYERS for m in layer]
# what loading a run and predicting with it (emotionlib.load, predict, export, a stack) may never import
INFERENCE = [
    "classifier",
    "combine.langstack",
    "predict",
    "metadata",
    "prediction_files",
    "model",
    "export",
    "features",
]
TRAINING = {
    "train",
    "build",
    "combine.stack_fit",
    "kfold",
    "distill",
    "preflight",
    "augment",
    "losses",
    "checkpoints",
    "sampling",
    "optim",
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules `name` imports anywhere in its source (relative to the package: '' is emotionlib)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["emotionlib", *filter(None, package.split("."))][: len(package.split(".")) + 2 - node.level]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}".removeprefix("emotionlib.") in known]
            targets = subs + ([mod] if len(subs) < len(node.names) else [])
        else:
            continue
        for t in targets:
            if t != "emotionlib" and not t.startswith("emotionlib."):
                continue
            t = t.removeprefix("emotionlib").removeprefix(".")
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def closure(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for t in edges[todo.pop()] - seen:
            seen.add(t)
            todo.append(t)
    return seen


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in edges.items() for b in targets if ORDER.index(b) > ORDER.index(a))


def test_every_module_has_a_layer():
    assert sorted(set(modules()) - set(ORDER)) == [] and sorted(set(ORDER) - set(modules())) == []


def test_imports_only_go_down_the_layers_and_so_form_no_circle():
    edges = graph()
    assert upward(edges) == []  # none is allowed: a circle needs at least one
    for name in edges:
        assert name not in closure(edges, name), f"emotionlib.{name} imports itself through others"


def test_inference_never_reaches_training():
    edges = graph()
    for name in INFERENCE:
        reached = closure(edges, name) & TRAINING
        assert not reached, f"emotionlib.{name} imports {sorted(reached)}"


def test_the_check_fails_on_an_upward_import_and_on_a_circle(tmp_path):
    """The scanner sees a function-level import: the same code with one added would fail the tests above."""
    path = tmp_path / "model.py"
    path.write_text("def load():\n    from emotionlib.train import train\n    from . import build\n")
    known = set(modules())
    found = imports("model", path, known)
    assert found == {"train", "build"}
    edges = graph() | {"model": graph()["model"] | found}
    assert ("model", "train") in upward(edges) and "model" in closure(edges, "model")
    assert {"train", "build"} <= closure(edges, "classifier")


@pytest.mark.parametrize("name", INFERENCE)
def test_inference_modules_are_importable_alone(name):
    import importlib

    importlib.import_module(f"emotionlib.{name}" if name else "emotionlib")


def test_no_function_is_over_50_lines():
    """One concern a function: a longer one is split where its parts can be named."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert long == []
