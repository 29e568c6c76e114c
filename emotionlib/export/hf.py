"""The Hugging Face export: a folder that AutoModelForSequenceClassification and pipeline("text-classification")
load as it is, with a model card of the run's measured metrics and provenance."""

from __future__ import annotations

from pathlib import Path

from emotionlib.run_config import read_config
from emotionlib.encoders import REGISTRY
from emotionlib.metadata import is_ensemble, read_metadata
from emotionlib.model import load_model
from emotionlib.runs import RunLayout, atomic_dir, read_json


def refuse_ensemble(run_dir: Path, fmt: str) -> None:
    if is_ensemble(read_metadata(RunLayout(run_dir).model)):
        raise ValueError(
            f"{run_dir}: an ensemble has no single network to export to {fmt}; export its members' "
            "runs, and combine them with the weights in its model/metadata.json"
        )


def export_hf(run_dir: Path, out: Path) -> Path:
    """A folder that AutoModelForSequenceClassification and pipeline("text-classification") load as it is.

    Only `head: auto` runs are exported: the seed's linear layer on the raw first token is no standard class.
    """
    run_dir = Path(run_dir)
    refuse_ensemble(run_dir, "Hugging Face")
    model, tokenizer, meta = load_model(RunLayout(run_dir).model)
    if meta.get("head", "linear") != "auto":
        raise ValueError(
            f"{run_dir}: head 'linear' (one layer on the raw first token) has no standard transformers "
            "class; train the run with head: auto (--set head=auto) to export it to Hugging Face"
        )
    net = model.net
    net.config.thresholds = dict(zip(meta["labels"], meta["thresholds"]))  # read back as config.thresholds
    tokenizer.model_max_length = meta["max_length"]  # so truncation=True cuts where training did
    with atomic_dir(out, "export-hf") as tmp:
        net.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(run_dir, meta), encoding="utf-8")
    return Path(out)


# the model card's use section and the heading of its measurements
USE_LINES = [
    "",
    "## Use",
    "",
    "```python",
    "from transformers import pipeline",
    "",
    'pipe = pipeline("text-classification", model="<this folder>", top_k=None)',
    'scores = pipe(["I can\'t believe how happy I feel!"], truncation=True)[0]',
    "thresholds = pipe.model.config.thresholds",
    'labels = [s["label"] for s in scores if s["score"] >= thresholds[s["label"]]]',
    "```",
    "",
    "## Measured",
    "",
]


def _measured_lines(metrics_path: Path) -> list[str]:
    """The model card's "Measured" table: every scored set at 0.5 and at the tuned thresholds."""
    if not metrics_path.is_file():
        return ["The run was exported before it was evaluated: no metrics."]
    m = read_json(metrics_path)
    h = m["headline"]
    lo, hi = h["macro_f1_ci95"]
    lines = [
        f"Headline: macro-F1 {h['macro_f1']:.4f} (95% bootstrap CI {lo:.4f}–{hi:.4f}) on `{h['set']}` at "
        "the tuned thresholds.",
        "",
        "| set | n | macro-F1 at 0.5 | macro-F1 at tuned thresholds |",
        "|---|---|---|---|",
    ]
    return lines + [
        f"| {key} | {s['n']} | {s['threshold_0.5']['macro_f1']:.4f} | {s['tuned_thresholds']['macro_f1']:.4f}"
        + (" (in-sample) |" if s["split"] == "val" else " |")
        for key, s in m["sets"].items()
    ]


def model_card(run_dir: Path, meta: dict) -> str:
    """README.md of an export: what the model is, its measured metrics and where they came from."""

    cfg = read_config(run_dir)
    layout = RunLayout(run_dir)
    prov = read_json(layout.provenance)
    encoder = f" ({REGISTRY[meta['encoder']].description})" if meta["encoder"] in REGISTRY else ""
    data = "your own data" if cfg.own_data else "SemEval-2025 Task 11 Track A"
    metrics_path = layout.metrics
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [emotion, multi-label, emotionlib]",
        "---",
        "",
        f"# {run_dir.name}: multi-label emotion classifier",
        "",
        f"Fine-tuned by emotionlib from `{meta['encoder']}`{encoder} with the encoder's own sequence-"
        f"classification head on {', '.join(meta['languages'])} ({data})."
        " Each label is an independent sigmoid output (`problem_type: multi_label_classification`); a label is "
        "predicted when its probability reaches its threshold, tuned on the run's validation part "
        "(`config.thresholds`).",
        "",
        "| label | threshold |",
        "|---|---|",
    ]
    lines += [f"| {lab} | {t:.2f} |" for lab, t in zip(meta["labels"], meta["thresholds"])]
    lines += USE_LINES
    lines += _measured_lines(metrics_path)
    lines += [
        "",
        "## Provenance",
        "",
        f"- commit `{prov['commit']}`, seed {cfg.seed}, best epoch {meta.get('best_epoch')}",
        "- libraries: " + ", ".join(f"{k} {v}" for k, v in prov["libraries"].items()),
        "- data (sha256): " + ", ".join(f"`{k}` `{v[:16]}…`" for k, v in prov["data"].items()),
        "- configuration: " + ", ".join(f"`{k}={v}`" for k, v in cfg.to_dict().items()),
        "",
    ]
    return "\n".join(lines)
