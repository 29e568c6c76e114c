"""Seed section 4: LIME top tokens per emotion, first-layer/first-head attention, a layer-by-head summary,
attention rollout (Abnar & Zuidema, 2020), and how far attention agrees with LIME.

Attention weights are not explanations (Jain & Wallace, 2019; Wiegreffe & Pinter, 2019): the agreement
figures measure how far the two views coincide, nothing more.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from emotionlib import plots
from emotionlib.export import ensure_onnx
from emotionlib.predict import OnnxForward, batched_proba, predict_proba
from emotionlib.runs import RunLayout, run_lock, write_csv, write_json
from emotionlib.run_records import record_step, step_inputs, step_is_current
from emotionlib import data as D
from emotionlib.classifier import load_run
from emotionlib.run_config import read_config
from emotionlib.split import training_parts
from emotionlib.metadata import read_finished
from emotionlib.model import load_model

log = logging.getLogger(__name__)

LIME_SPLIT = r"\W+"  # LIME's own word definition
MIN_WORDS = 5  # sentences shorter than this are left out of the agreement figures


# --- LIME ----------------------------------------------------------------------------------------------


def _lime_scorer(model, tokenizer, outputs: list, cols: list, max_length: int, batch_size: int, lang, forward):
    """LIME's classifier function: each perturbed text's (absent, present) probabilities of the explained labels."""

    def classifier_fn(texts):
        # LIME draws its word subsets independently, so a short text's perturbations repeat (at most 2^words are
        # distinct): each distinct one is scored once
        distinct = {t: i for i, t in enumerate(dict.fromkeys(texts))}
        back = np.fromiter((distinct[t] for t in texts), int, len(texts))
        if forward is not None:
            p = batched_proba(forward, tokenizer, list(distinct), len(outputs), max_length, batch_size)
        else:
            p = predict_proba(model, tokenizer, list(distinct), max_length, batch_size, langs=[lang] * len(distinct))
        p = p[back]
        if p.shape[1] != len(outputs):
            raise ValueError(
                f"the model has {p.shape[1]} outputs, {len(outputs)} labels named: give model_labels, "
                "the model's labels in output order, when explaining some of them"
            )
        p = p[:, cols]
        return np.stack([1 - p, p], axis=2).reshape(len(texts), -1)  # columns: not-l0, l0, not-l1, l1, ...

    return classifier_fn


def explain_lime(
    model,
    tokenizer,
    text: str,
    labels: Sequence[str],
    max_length: int = 128,
    num_samples: int = 1000,
    num_features: int = 10,
    seed: int = 42,
    batch_size: int = 128,
    lang: str | None = None,
    model_labels: Sequence[str] | None = None,
    forward=None,
):
    """Each emotion of `labels` as its own binary problem (absent, present), all fitted on one set of
    perturbations. `model_labels`: the model's labels in the order of its outputs, when `labels` is a subset of
    them; `lang`: the language whose parts a head with parts per language uses; `forward`: another backend for the
    same network (e.g. its ONNX graph), which scores the perturbations instead of PyTorch.

    Returns {label: [(word, weight), ...]} sorted by |weight|, plus the raw lime Explanation.
    """
    from lime.lime_text import LimeTextExplainer

    outputs = list(model_labels or labels)
    classifier_fn = _lime_scorer(
        model, tokenizer, outputs, [outputs.index(lab) for lab in labels], max_length, batch_size, lang, forward
    )

    names = [n for lab in labels for n in (f"not {lab}", lab)]
    explainer = LimeTextExplainer(class_names=names, split_expression=LIME_SPLIT, random_state=seed)
    exp = explainer.explain_instance(
        text,
        classifier_fn,
        labels=[2 * j + 1 for j in range(len(labels))],
        num_features=num_features,
        num_samples=num_samples,
    )
    return {lab: exp.as_list(label=2 * j + 1) for j, lab in enumerate(labels)}, exp


def rank_of(word: str, weights: list[tuple[str, float]]) -> int | None:
    """1-based rank of `word` among the features by signed weight toward the label (None if absent)."""
    ordered = sorted(weights, key=lambda kv: -kv[1])
    return next((i + 1 for i, (w, _) in enumerate(ordered) if w.lower() == word.lower()), None)


# --- attention -------------------------------------------------------------------------------------------


@torch.inference_mode()
def attentions(model, tokenizer, text: str, max_length: int = 128):
    """All layers' attention (layers, heads, n, n) from an implementation that returns weights, with token info."""
    enc = tokenizer(
        text,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    impl = model.encoder.config._attn_implementation
    if impl != "eager":
        model.encoder.set_attn_implementation("eager")  # sdpa does not return weights
    device = next(model.parameters()).device
    _, att = model(enc["input_ids"].to(device), enc["attention_mask"].to(device), output_attentions=True)
    if impl != "eager":
        model.encoder.set_attn_implementation(impl)
    stacked = torch.stack([a[0] for a in att]).float().cpu().numpy()
    keep = (enc["special_tokens_mask"][0] == 0) & (enc["attention_mask"][0] == 1)
    return stacked, {
        "tokens": tokenizer.convert_ids_to_tokens(enc["input_ids"][0]),
        "offsets": enc["offset_mapping"][0].tolist(),
        "content": keep.numpy(),
        "word_ids": enc.word_ids(0),
    }


def rollout(att: np.ndarray) -> np.ndarray:
    """Abnar & Zuidema (2020): heads averaged, half identity for the residual path, rows renormalised, multiplied."""
    n = att.shape[-1]
    result = np.eye(n)
    for layer in att:
        a = 0.5 * layer.mean(axis=0) + 0.5 * np.eye(n)
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result


def merge_words(text: str, info: dict, values: np.ndarray) -> pd.DataFrame:
    """Sum token values into the tokenizer's words; special and padding tokens are dropped."""
    rows: dict[int, dict] = {}
    for t, (wid, (s, e), keep) in enumerate(zip(info["word_ids"], info["offsets"], info["content"])):
        if wid is None or not keep:
            continue
        r = rows.setdefault(wid, {"start": s, "end": e, "value": 0.0, "pieces": 0})
        r["start"], r["end"] = min(r["start"], s), max(r["end"], e)
        r["value"] += float(values[t])
        r["pieces"] += 1
    df = pd.DataFrame(rows.values(), columns=["start", "end", "value", "pieces"])
    df.insert(0, "word", [text[s:e].strip() for s, e in zip(df["start"], df["end"])])
    return df


def lime_words_values(text: str, info: dict, values: np.ndarray) -> dict[str, float]:
    """Token values summed onto LIME's words (all occurrences of a word together, as LIME's bag of words)."""
    out: dict[str, float] = {}
    for m in re.finditer(r"\w+", text):
        total = sum(
            float(values[t])
            for t, ((s, e), keep) in enumerate(zip(info["offsets"], info["content"]))
            if keep and s < m.end() and e > m.start()
        )
        out[m.group()] = out.get(m.group(), 0.0) + total
    return out


def layer_head_summary(att: np.ndarray, content: np.ndarray) -> np.ndarray:
    """(layers, heads): share of the first token's attention that lands on content (non-special) tokens."""
    return att[:, :, 0, :][:, :, content].sum(axis=-1)


# --- agreement -----------------------------------------------------------------------------------------


def agreement(
    model,
    tokenizer,
    texts: Sequence[str],
    probs: np.ndarray,
    labels: Sequence[str],
    max_length: int,
    num_samples: int,
    seed: int,
    lang: str | None = None,
    model_labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per sentence of at least MIN_WORDS distinct words, Spearman's rho over words between LIME weights (top
    predicted label) and raw first-layer/first-head attention, and between LIME and rollout from the first token."""
    from scipy.stats import spearmanr

    rows = []
    for text, p in zip(texts, probs):
        words = set(re.findall(r"\w+", text))
        if len(words) < MIN_WORDS:  # a rank correlation over a handful of words says little
            continue
        j = int(np.argmax(p))
        lime_w, _ = explain_lime(
            model,
            tokenizer,
            text,
            [labels[j]],
            max_length,
            num_samples,
            len(words),
            seed,
            lang=lang,
            model_labels=model_labels or labels,
        )
        lime_w = dict(lime_w[labels[j]])
        att, info = attentions(model, tokenizer, text, max_length)
        raw = lime_words_values(text, info, att[0, 0, 0])
        roll = lime_words_values(text, info, rollout(att)[0])
        common = [w for w in lime_w if w in raw]
        a = [lime_w[w] for w in common]
        rows.append(
            {
                "text": text,
                "label": labels[j],
                "words": len(common),
                "rho_lime_attention": spearmanr(a, [raw[w] for w in common]).statistic,
                "rho_lime_rollout": spearmanr(a, [roll[w] for w in common]).statistic,
            }
        )
    return pd.DataFrame(rows)


# --- the run-level step (notebook 04) ------------------------------------------------------------------


def scored_set(layout: RunLayout, cfg, model=None, tokenizer=None, meta: dict | None = None):
    """The first labeled test file of the run's languages, else its dev file, else its validation part, with the
    model's probabilities: the evaluate step's predictions where it wrote them, else computed here (nothing is
    written), so interpret does not depend on evaluate having run. (gold LangSplit, probabilities DataFrame)."""
    source = D.source_for(cfg)
    for split in ("test", "dev", "val"):
        for lang in D.train_languages(cfg):
            if split == "val":
                gold = next(p for p in training_parts(cfg, layout)[1] if p.lang == lang)
            elif source.has(split, lang):
                gold = source.load(split, lang)
            else:
                continue
            if not gold.labeled:
                continue
            path = layout.predictions(split, lang)
            if path.is_file():
                return gold, pd.read_csv(path, dtype={"id": str}).set_index("id").loc[gold.ids]
            if model is not None:
                labels = [lab for lab in meta["labels"] if lab in gold.labels]
                probs = predict_proba(model, tokenizer, gold.texts, meta["max_length"], langs=[lang] * len(gold))
                probs = probs[:, [meta["labels"].index(lab) for lab in labels]]
                return gold, pd.DataFrame(probs, columns=labels, index=pd.Index(gold.ids, name="id"))
    raise FileNotFoundError(f"{layout.root}: no labeled set to explain")


def pick_examples(gold, probs: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """For each label, the most confident true positive and the most confident false positive."""
    rows = []
    for lab in probs.columns:
        y = gold.y[:, gold.labels.index(lab)]
        p = probs[lab].to_numpy()
        fired = p >= thresholds[lab]
        for kind, sel in (("true positive", fired & (y == 1)), ("false positive", fired & (y == 0))):
            if sel.any():
                i = int(np.flatnonzero(sel)[np.argmax(p[sel])])
                rows.append(
                    {
                        "label": lab,
                        "kind": kind,
                        "set": f"{gold.split}/{gold.lang}",
                        "id": gold.ids[i],
                        "probability": float(p[i]),
                        "text": gold.texts[i],
                    }
                )
    return pd.DataFrame(rows, columns=["label", "kind", "set", "id", "probability", "text"])


def interpret_run(run_dir: Path, case_text: str | None = None) -> Path:
    """Write every interpretability view of a trained run under runs/<run_id>/interpret/.

    The case study is the config's `case_study` sentence (the seed's by default), and the rank of
    `case_study_word` among the LIME features of `case_study_label` is recorded when the model has that label.
    """
    layout = RunLayout(run_dir)
    read_finished(layout.root)  # config.yaml, the split and the model as training wrote them, before any is read
    cfg = read_config(layout.root)
    case_text = case_text or cfg.case_study
    inputs = step_inputs(layout, [layout.config, layout.weights, layout.metadata, layout.eval_summary])
    if case_text == cfg.case_study and step_is_current(layout, "interpret", inputs, [layout.interpret_summary]):
        log.info(f"{layout.root}: interpretation is up to date with the model and its evaluation; skipped")
        return layout.interpret
    # a per-language stack's views are those of its network (LIME and attention explain one network)
    model, tokenizer, meta = load_run(layout.root, attn_implementation="eager", stack=False)
    member = None
    if getattr(model, "is_ensemble", False):
        # attention belongs to one network: the views are those of the ensemble's largest-weight member
        member = RunLayout(model.top_member().run_dir)
        model, tokenizer, meta = load_model(member.model, attn_implementation="eager")
    with run_lock(layout):
        _interpret(cfg, layout, model, tokenizer, meta, case_text, member)
        if case_text == cfg.case_study:
            record_step(layout, "interpret", inputs, [layout.interpret_summary])
    return layout.interpret


def lime_forward(cfg, network_run: RunLayout, meta: dict):
    """What scores LIME's perturbations: None (the PyTorch model) or, with `lime_backend: onnx`, the network's
    ONNX graph (exported under its run on first use; a head with parts per language stays in PyTorch)."""
    if cfg.lime_backend != "onnx" or meta.get("head_per_language", "none") != "none":
        return None
    return OnnxForward(ensure_onnx(network_run.root))


def attention_views(layout: RunLayout, model, tokenizer, case_text: str, max_length: int) -> None:
    """The case study's attention from the first token (layer 1, head 1), the layer x head share on content
    tokens, and the rollout: CSV and PNG each."""
    att, info = attentions(model, tokenizer, case_text, max_length)
    first = merge_words(case_text, info, att[0, 0, 0])
    write_csv(first, layout.attention_case, index=False)
    plots.token_bars(
        first["word"], first["value"], "Layer 1, head 1: attention from the first token", layout.attention_case_png
    )
    summary = layer_head_summary(att, info["content"])
    write_csv(
        pd.DataFrame(
            summary,
            index=[f"layer {i + 1}" for i in range(len(summary))],
            columns=[f"head {h + 1}" for h in range(summary.shape[1])],
        ),
        layout.layer_head,
    )
    plots.heatmap(summary, "First-token attention on content tokens (share)", "head", "layer", layout.layer_head_png)
    roll = merge_words(case_text, info, rollout(att)[0])
    write_csv(roll, layout.rollout_case, index=False)
    plots.token_bars(roll["word"], roll["value"], "Attention rollout from the first token", layout.rollout_case_png)


def lime_examples(layout: RunLayout, model, tokenizer, meta: dict, gold, probs: pd.DataFrame, lime_args: dict) -> None:
    """For each label its most confident true and false positive (`pick_examples`), each explained by LIME for its
    label (examples.csv, lime_examples.csv)."""
    labels = meta["labels"]
    examples = pick_examples(gold, probs, dict(zip(labels, meta["thresholds"])))
    ex_rows = []
    for n, r in enumerate(examples.itertuples(), start=1):
        log.info(f"LIME example {n}/{len(examples)}: {r.label} ({r.kind})")
        weights, _ = explain_lime(model, tokenizer, r.text, [r.label], lang=gold.lang, model_labels=labels, **lime_args)
        ex_rows += [
            {"label": r.label, "kind": r.kind, "id": r.id, "rank": i + 1, "word": w, "weight": wt}
            for i, (w, wt) in enumerate(weights[r.label])
        ]
    write_csv(examples, layout.examples, index=False)
    write_csv(pd.DataFrame(ex_rows), layout.lime_examples, index=False)


def _case_study(cfg, layout: RunLayout, model, tokenizer, meta: dict, case_text: str, lime_args: dict) -> dict:
    """LIME on the seed's case sentence: its table and bar chart written, the figures the summary reports returned."""
    labels = meta["labels"]
    # the case study is the seed's English sentence: English parts of a per-language head, if it has them
    case_lang = "eng" if "eng" in getattr(model, "languages", []) else None
    t0 = time.perf_counter()
    case, _ = explain_lime(model, tokenizer, case_text, labels, lang=case_lang, **lime_args)
    lime_seconds = time.perf_counter() - t0
    case_probs = predict_proba(model, tokenizer, [case_text], meta["max_length"], langs=[case_lang])[0]
    case_table = pd.DataFrame(
        [
            {"label": lab, "rank": i + 1, "word": w, "weight": wt}
            for lab, ws in case.items()
            for i, (w, wt) in enumerate(ws)
        ]
    )
    write_csv(case_table, layout.lime_case, index=False)
    case_label = cfg.case_study_label if cfg.case_study_label in case else labels[0]
    plots.weight_bars(
        [w for w, _ in case[case_label]],
        [wt for _, wt in case[case_label]],
        f'LIME, {case_label}: "{case_text}"',
        path=layout.lime_case_png,
    )
    return {
        "case_study": case_text,
        "case_probabilities": dict(zip(labels, case_probs.round(4).tolist())),
        "case_label": case_label,
        "case_word": cfg.case_study_word,
        "case_word_rank": rank_of(cfg.case_study_word, case[case_label]),
        "case_word_weight": dict(case[case_label]).get(cfg.case_study_word),
        "lime_seconds_one_explanation": round(lime_seconds, 2),
    }


def _agreement(cfg, layout: RunLayout, model, tokenizer, meta: dict, gold, probs) -> dict:
    """LIME against attention on a sample of the scored set: the table written, its summary figures returned."""
    rng = np.random.default_rng(cfg.seed)
    pick = np.sort(rng.choice(len(gold), size=min(cfg.agreement_sentences, len(gold)), replace=False))
    agree = agreement(
        model,
        tokenizer,
        [gold.texts[i] for i in pick],
        probs.to_numpy()[pick],
        list(probs.columns),
        meta["max_length"],
        cfg.lime_num_samples,
        cfg.seed,
        lang=gold.lang,
        model_labels=meta["labels"],
    )
    write_csv(agree, layout.agreement, index=False)
    return {
        "agreement_set": f"{gold.split}/{gold.lang}",
        "agreement_sentences": int(len(agree)),
        "mean_rho_lime_attention": float(agree["rho_lime_attention"].mean()) if len(agree) else None,
        "mean_rho_lime_rollout": float(agree["rho_lime_rollout"].mean()) if len(agree) else None,
    }


def _interpret(
    cfg, layout: RunLayout, model, tokenizer, meta: dict, case_text: str, member: RunLayout | None = None
) -> None:
    layout.interpret.mkdir(parents=True, exist_ok=True)
    lime_args = dict(
        max_length=meta["max_length"],
        num_samples=cfg.lime_num_samples,
        num_features=cfg.lime_num_features,
        seed=cfg.seed,
        forward=lime_forward(cfg, member or layout, meta),
    )
    case = _case_study(cfg, layout, model, tokenizer, meta, case_text, lime_args)

    gold, probs = scored_set(member or layout, cfg, model, tokenizer, meta)
    log.info(
        f"LIME: examples and {min(cfg.agreement_sentences, len(gold))} agreement sentences, "
        f"{cfg.lime_num_samples} perturbations each"
    )
    lime_examples(layout, model, tokenizer, meta, gold, probs, lime_args)
    attention_views(layout, model, tokenizer, case_text, meta["max_length"])
    agree = _agreement(cfg, layout, model, tokenizer, meta, gold, probs)

    write_json(
        layout.interpret_summary,
        case
        | {"lime_num_samples": cfg.lime_num_samples}
        | agree
        | {
            "explained_member": member.root.name if member else None,
            "explains_stack_network": layout.stack_meta.is_file(),
            "note": "Attention weights are not explanations (Jain & Wallace 2019; Wiegreffe & Pinter 2019).",
        },
    )
