"""The technical report's text: Markdown sections and tables built from a run's files (nothing is recomputed),
called by notebook 05. Executing the notebooks and rendering the report is `pipeline`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emotionlib.config import Config
from emotionlib.run_config import read_config
from emotionlib.encoders import REGISTRY
from emotionlib.runs import RunLayout, read_json


# --- reading a run ---------------------------------------------------------------------------------------


@dataclass
class RunResults:
    """Everything the report shows, read from runs/<run_id>/ (nothing is recomputed here)."""

    run_dir: Path
    config: Config
    provenance: dict
    split: dict
    train_log: pd.DataFrame
    train_summary: dict
    metrics: dict
    eval_summary: pd.DataFrame
    per_label: pd.DataFrame
    comparison: pd.DataFrame
    interpret: dict = field(default_factory=dict)
    model_meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: Path) -> "RunResults":
        run = RunLayout(run_dir)
        return cls(
            run_dir=run.root,
            config=read_config(run.root),
            provenance=read_json(run.provenance),
            split=read_json(run.split),
            train_log=pd.read_json(run.train_log, lines=True) if run.train_log.is_file() else pd.DataFrame(),
            train_summary=read_json(run.train_summary),
            metrics=read_json(run.metrics),
            eval_summary=pd.read_csv(run.eval_summary),
            per_label=pd.read_csv(run.per_label),
            comparison=pd.read_csv(run.comparison),
            interpret=read_json(run.interpret_summary) if run.interpret_summary.is_file() else {},
            model_meta=read_json(run.metadata),
        )

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_dir)

    @property
    def is_ensemble(self) -> bool:
        return self.model_meta.get("kind") == "ensemble"


def members_table(r: RunResults) -> pd.DataFrame:
    """An ensemble's members beside it: weight, validation macro-F1 (tuned, in-sample) and dev figures."""
    rows = []
    for m in r.model_meta["members"]:
        row = {"member": m["name"], "weight": m["weight"], "val macro-F1 (tuned, in-sample)": m["val_macro_f1_tuned"]}
        if m["run"]:
            layout = RunLayout(m["run"])
            cfg = read_config(layout.root)
            row |= {
                "encoder": cfg.model,
                "loss": cfg.loss,
                "learning rate": f"{cfg.learning_rate:g}",
                "seed": str(cfg.seed),
            }
            h = read_json(layout.metrics)["headline"] if layout.metrics.is_file() else None
            row[f"{h['set'] if h else 'headline'} macro-F1 (tuned)"] = h["macro_f1"] if h else None
        else:
            row |= {"encoder": "TF-IDF + logistic regression (fitted on the training part)"}
        rows.append(row)
    h = r.metrics.get("headline") or {}
    rows.append(
        {
            "member": f"ensemble {r.run_dir.name}",
            "weight": 1.0,
            "val macro-F1 (tuned, in-sample)": r.train_summary["best_val_macro_f1"],
            f"{h.get('set', 'headline')} macro-F1 (tuned)": h.get("macro_f1"),
        }
    )
    return pd.DataFrame(rows)


def training_table(r: RunResults):
    """The per-epoch log of a trained run; for an ensemble, its members beside it."""
    if r.is_ensemble:
        return table(members_table(r))
    cols = ["epoch", "train_loss", "val_loss", "val_macro_f1", "train_seconds", "train_examples_per_second"]
    return table(r.train_log[[c for c in cols if c in r.train_log]].round(4))


def data_description(r: RunResults) -> str:
    return (
        "your own data set " + f"`{r.config.data_name}` ({r.split['source']})"
        if r.config.own_data
        else f"SemEval-2025 Task 11 Track A ({r.split['source']})"
    )


def introduction(r: RunResults) -> str:
    labels = r.model_meta["labels"]
    return (
        f"This report describes a system that predicts which of {len(labels)} labels — {', '.join(labels)} — a "
        "text expresses; a text may carry several or none. The model is a pretrained transformer encoder "
        f"fine-tuned with a classification head. The data are {data_description(r)}. Every number below was read "
        "from the run directory that this report was rendered from; the report covers the model, its training "
        "and evaluation, interpretability analyses, and a discussion."
    )


HEAD_TEXT = {
    "linear": "linear head on the first token (the seed's)",
    "auto": "the encoder's own sequence-classification head (a dense layer with tanh on the first token, "
    "then a linear layer), as transformers' AutoModelForSequenceClassification holds it",
}


def comparison_intro(r: RunResults) -> str:
    if r.config.own_data:
        return (
            "Beside a TF-IDF + logistic regression baseline (character and word n-grams, one-vs-rest, trained on "
            "the same train file); there are no published figures for this data, so none are shown."
        )
    return (
        "Beside the published BRIGHTER results (Table 5 of Muhammad et al., 2025; macro-F1 ×100 on the test "
        "split, quoted as published; their XLM-R is xlm-roberta-large fine-tuned for 2 epochs), with a TF-IDF + "
        "logistic regression baseline (character and word n-grams, one-vs-rest, trained on the same language's "
        "train file) beside them. Where a language's test labels are not public in this copy (English), our "
        "figure is on the dev file, as `scored_on` says, and the comparison is indicative only."
    )


def comparison_table(r: RunResults):
    """The per-language comparison, without the published columns where this data has none."""
    t = r.comparison.dropna(axis=1, how="all").rename(columns={"emotionlib_minus_best": "ours − best"})
    if not len(t):
        from IPython.display import Markdown

        return Markdown("No dev or test file was scored, so there is nothing to compare.")
    return table(t, digits=2)


def image(path: Path, optional: bool = False):
    """A figure of the run, or a sentence saying why there is none (nothing at all for an `optional` figure of a
    section that does not apply to the run)."""
    from IPython.display import Image, Markdown

    path = Path(path)
    if path.is_file():
        return Image(filename=str(path))
    return Markdown("" if optional else f"*(no figure: `{path.name}` was not made for this run)*")


def f3(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:.3f}"


def metrics_table(r: RunResults) -> pd.DataFrame:
    t = r.eval_summary.copy()
    t["macro-F1 (95% CI)"] = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in zip(t.macro_f1, t.ci_low, t.ci_high)]
    t["thresholds"] = t["thresholds"].map({"threshold_0.5": "0.5", "tuned_thresholds": "tuned on val"})
    t.loc[(t["split"] == "val") & (t["thresholds"] == "tuned on val"), "thresholds"] = "tuned on val (in-sample)"
    cols = ["set", "thresholds", "n", "macro-F1 (95% CI)", "macro_precision", "macro_recall", "micro_f1"]
    return t[cols].round(3)


def headline(r: RunResults) -> str:
    h = r.metrics["headline"]
    lo, hi = h["macro_f1_ci95"]
    return (
        f"On the official **{h['set']}** set, the model reaches **macro-F1 {h['macro_f1']:.3f}** "
        f"(95% bootstrap CI {lo:.3f}–{hi:.3f}) with per-label thresholds tuned on the validation part, "
        f"and {h['macro_f1_at_0.5']:.3f} at the fixed threshold 0.5; macro-precision {h['macro_precision']:.3f}, "
        f"macro-recall {h['macro_recall']:.3f}."
    )


def ensemble_facts(r: RunResults) -> str:
    members = ", ".join(f"`{m['name']}` ({m['weight']:.2f})" for m in r.model_meta["members"])
    p, hw = r.provenance, r.provenance["hardware"]
    return "\n".join(
        [
            f"- **Ensemble** of {len(r.model_meta['members'])} members, weights: {members}. The probabilities are "
            f"averaged with these weights; the weights ({r.model_meta.get('weights_method', 'see metadata')}) and the "
            "per-label thresholds were fitted on the members' shared validation part only.",
            f"- **Data**: {data_description(r)}, languages: {', '.join(r.split['languages'])}; {p['n_train']} training "
            f"rows, {p['n_val']} validation rows (split seed {r.config.split_seed}), the same for every member",
            f"- **Hardware**: {hw['cpu']}, {hw['cores']} cores; fitting the ensemble took {r.train_summary['wall_seconds']:.0f} s",
            "- **Software**: " + ", ".join(f"{k} {v}" for k, v in p["libraries"].items()),
            f"- **Commit**: `{p['commit']}`, run `{r.run_dir.name}`",
        ]
    )


WEIGHTING_TEXT = {
    "none": "",
    "static": ", per-label loss weights from the effective number of positives "
    "(class-balanced, beta {c.class_balance_beta})",
    "dynamic": ", per-label loss weights re-set after every epoch from validation F1, (1 − F1 + 0.05)^"
    "{c.difficulty_tau}",
}


def head_text(meta: dict) -> str:
    text = HEAD_TEXT[meta.get("head", "linear")]
    if meta.get("pooling") == "mean":  # the linear head reads the mean of the token embeddings instead
        text = text.replace("on the first token (the seed's)", "on the mean of the token embeddings (padding excluded)")
    return text


def taught_text(r: RunResults) -> str:
    """What taught the network beside its gold labels: a teacher, transfer texts, or the stack's fold it is."""
    what = ""
    if teacher := r.provenance.get("distilled_from"):
        scored = sorted({how for lang in teacher["scored"].values() for how in lang.values()})
        what += (
            f"; distilled: each training target is {teacher['distill_weight']:g} × the probability of the "
            f"teacher run `{Path(teacher['teacher']).name}` + {1 - teacher['distill_weight']:g} × the gold "
            f"label (the teacher's members scored the training texts {' or '.join(scored)})"
        )
    if rows := r.provenance.get("transfer_rows"):
        name = r.config.transfer_texts
        source = (
            "GoEmotions' English Reddit comments (Demszky et al., 2020; CC BY 4.0), their own labels unused"
            if name == "goemotions"
            else f"`{Path(name).name}`"
        )
        what += f"; beside them {rows:,} transfer texts, {source}, whose targets are the teacher's probabilities alone"
    if adopted := r.provenance.get("adopted_from"):
        what += (
            f"; this network is the stack's fold network `{adopted}` (trained on the training part without one "
            "fold), adopted rather than trained a second time"
        )
    return what


def trained_text(r: RunResults) -> str:
    frozen, precision = r.model_meta.get("freeze_layers", 0), r.model_meta.get("mixed_precision", "no")
    what = (
        "every weight (full fine-tuning)"
        if not frozen
        else "the head only: the encoder is frozen, each text's pooled features were computed once without gradients "
        "(the frozen-encoder mode)"
        if frozen == -1
        else f"every weight above layer {frozen} (the embeddings and the lowest {frozen} layers frozen)"
    )
    n = r.provenance.get("trainable_parameters")
    t = r.config.language_temperature
    if t != 1:  # language-balanced sampling
        what += (
            f"; each epoch draws a language's rows in proportion to n^(1/{t:g}) of its n training rows (from "
            f"{min(r.provenance['language_rows_per_epoch'].values()):,} to "
            f"{max(r.provenance['language_rows_per_epoch'].values()):,} rows a language)"
        )
    what += taught_text(r)
    return (
        what
        + (f", {n:,} trainable parameters" if n else "")
        + "; arithmetic "
        + (
            "in bf16 autocast (weights and optimiser in fp32), predictions too"
            if precision == "bf16"
            else "in fp16 autocast"
            if precision == "fp16"
            else "in fp32"
        )
    )


def comparison_count(r: RunResults) -> str:
    """How many languages with a published figure this run beats, on their test files."""
    t = r.comparison
    if r.config.own_data or "best_published" not in t or not t["best_published"].notna().any():
        return ""
    t = t[(t["scored_on"] == "test") & t["best_published"].notna()]
    if not len(t):
        return "No language with a published figure was scored on its test file."
    beats = t[t["emotionlib"] > t["best_published"]]["lang"].tolist()
    base = int((t["emotionlib"] > t["tfidf_lr"]).sum()) if "tfidf_lr" in t else None
    return (
        f"On the test files of the **{len(t)} languages with a published figure**, this run beats the best "
        f"published column on **{len(beats)}**"
        + (f" ({', '.join(beats)})" if beats else "")
        + (f" and the TF-IDF baseline on {base}" if base is not None else "")
        + f"; its mean is {t['emotionlib'].mean():.2f} against {t['best_published'].mean():.2f} for the best "
        "published figures" + (f" and {t['tfidf_lr'].mean():.2f} for TF-IDF." if "tfidf_lr" in t else ".")
    )


def stack_facts(r: RunResults) -> list[str]:
    """The setup line of a run stacked per language (none otherwise)."""
    if not r.layout.stack_meta.is_file():
        return []
    st = read_json(r.layout.stack_meta)
    n = len(st["languages"])
    return [
        f"- **Per-language stack** ({n} language{'' if n == 1 else 's'}, fitted in {st['wall_seconds']:.0f} s): "
        f"members {', '.join(f'`{m}`' for m in st['members'])}; the features member is a logistic regression per "
        f"label (class-balanced, C from {', '.join(f'{c:g}' for c in st['lr_cs'])}) on the mean-pooled hidden "
        f"states of layers {', '.join(map(str, st['feature_layers']))} of the frozen `{st['encoder']}`, fitted "
        "on the language's training part; the C, the member weights (a grid over the simplex in steps of "
        f"{st['weight_step']:g}) and the per-label thresholds are fitted on that language's validation part only "
        f"(a part under {st['min_val']} rows: equal weights, thresholds 0.5); validation figures are "
        f"cross-fitted over {st['folds']} folds." + fold_network_facts(st.get("network_folds"))
    ]


def fold_network_facts(folds: dict | None) -> str:
    """The cross-fit ensemble behind a stack's network member, when it has one."""
    if not folds:
        return ""
    k = len(folds["runs"])
    return (
        f" The `network` member is a cross-fit ensemble: the mean of {k} networks of this run's config, each "
        f"trained on the training part without one of {k} folds (`{folds['folder']}/`); scored on the fold each "
        f"did not see, they reach a pooled macro-F1 of {folds['kfold_pooled_macro_f1']:.4f} at threshold 0.5 "
        f"(folds {', '.join(f'{v:.4f}' for v in folds['kfold_fold_macro_f1'])})."
    )


def stack_section(r: RunResults):
    """Per language: the stack, each member, TF-IDF, the best published figure and the member weights."""
    from IPython.display import Markdown

    from IPython.display import display

    if not r.layout.stack_languages.is_file():
        return Markdown("")  # the run has no stack: the report leaves the section out
    display(
        Markdown(
            "**Per-language stacking**: each language's stack beside its members (each at its own "
            "thresholds fitted on that language's validation part), the TF-IDF baseline and the best "
            "published figure (×100), with the cross-fitted validation figure and the member weights:"
        )
    )
    return table(pd.read_csv(r.layout.stack_languages), digits=2)


def stack_count(r: RunResults) -> str:
    """The count sentences of a stacked run: above the best published, mean, and how often below TF-IDF."""
    if not r.layout.stack_languages.is_file():
        return ""
    t = pd.read_csv(r.layout.stack_languages)
    t = t[(t["scored_on"] == "test") & t["best_published"].notna()]
    if not len(t):
        return ""
    below = t[t["stack_minus_tfidf"] < -1.0]["lang"].tolist()
    above = t[t["stack_minus_best"] > 0]["lang"].tolist()
    weights = [c for c in t if c.startswith("w_")]
    mean_w = ", ".join(f"{c[2:]} {t[c].mean():.2f}" for c in weights)
    return (
        f"On the test files of the {len(t)} languages with a published figure, the stack is above the best "
        f"published figure on **{len(above)}** ({', '.join(above) or 'none'}), with a mean of "
        f"**{t['stack'].mean():.2f}** against {t['best_published'].mean():.2f}, and more than 1.0 point below the "
        f"TF-IDF baseline on **{len(below)}** ({', '.join(below) or 'none'}). Mean member weights: {mean_w}. "
        "The Romanian published figure equals a cross-lingual row elsewhere in the BRIGHTER paper: it is kept, "
        "but unconfirmed."
    )


def label_effects(r: RunResults) -> pd.DataFrame:
    """Per label, the stack's cross-fitted validation F1 beside each member's alone (the mean over the stack's
    languages that have the label); empty for a run without a stack, or one fitted before these were kept."""
    if not r.layout.stack_meta.is_file():
        return pd.DataFrame()
    langs = [f for f in read_json(r.layout.stack_meta)["languages"].values() if "val_oof_per_label" in f]
    rows = [{"label": lab, "who": "stack", "f1": v} for f in langs for lab, v in f["val_oof_per_label"].items()]
    rows += [
        {"label": lab, "who": m, "f1": v}
        for f in langs
        for m, per in f["members_val_oof_per_label"].items()
        for lab, v in per.items()
    ]
    if not rows:
        return pd.DataFrame()
    t = pd.DataFrame(rows).pivot_table(index="label", columns="who", values="f1", aggfunc="mean", sort=False)
    members = [c for c in t.columns if c != "stack"]
    t["best_member"] = t[members].idxmax(axis=1)
    t["stack_minus_best_member"] = t["stack"] - t[members].max(axis=1)
    return t[["stack", *members, "best_member", "stack_minus_best_member"]].reset_index().round(4)


def sweep_label_effects(reports_dir: Path = Path("reports"), axes=("augment", "loss_weighting")) -> list[str]:
    """One line per setting of augmentation or loss weighting that a sweep of this checkout measured against
    `none`: the change of each label's validation F1 (mean over seeds, and over the sweep's other settings)."""
    lines = []
    for path in sorted(Path(reports_dir).glob("sweep-*/summary.csv")):
        t = pd.read_csv(path)
        labels = [c[4:-9] for c in t if c.startswith("val_") and c.endswith("_0.5_mean") and c != "val_f1_0.5_mean"]
        setting = list(t.columns[: t.columns.get_loc("seeds")])  # the grid's axes come first
        for axis in (a for a in axes if a in setting and "none" in set(t[a].astype(str))):
            others = [c for c in setting if c != axis]
            base = t[t[axis].astype(str) == "none"]
            for value in sorted(set(t[axis].astype(str)) - {"none"}):
                cur = t[t[axis].astype(str) == value]
                pair = (
                    cur.merge(base, on=others, suffixes=("", "_none"))
                    if others
                    else cur.merge(base, how="cross", suffixes=("", "_none"))
                )
                if not len(pair) or not labels:
                    continue
                change = {
                    lab: 100 * (pair[f"val_{lab}_0.5_mean"] - pair[f"val_{lab}_0.5_mean_none"]).mean() for lab in labels
                }
                diffs = ", ".join(f"{lab} {d:+.1f}" for lab, d in change.items())
                lines.append(
                    f"- `{axis}: {value}` against `none` ({path.parent.name}, {int(pair['seeds'].min())} "
                    f"seeds, validation F1 at 0.5, points): {diffs}."
                )
    return lines


def crosslingual_section(r: RunResults):
    """The cross-lingual runs (`holdout_languages`), or nothing when the run made none."""
    from IPython.display import Markdown

    from IPython.display import display

    if not r.layout.crosslingual.is_file():
        return Markdown("")  # no held-out languages: the report leaves the section out
    display(
        Markdown(
            "**Cross-lingual transfer** (Track C's spirit): each held-out language scored by a run trained "
            "on the other languages only, beside this run, which trained on it:"
        )
    )
    return table(pd.read_csv(r.layout.crosslingual), digits=2)


def setup_facts(r: RunResults) -> str:
    if r.is_ensemble:
        return ensemble_facts(r)
    c, p, s = r.config, r.provenance, r.train_summary
    langs = ", ".join(r.split["languages"])
    hw = p["hardware"]
    return "\n".join(
        [
            f"- **Encoder**: `{c.model}` ({REGISTRY[c.model].description if c.model in REGISTRY else r.model_meta.get('encoder_dir', '')}), "
            f"{head_text(r.model_meta)}, {len(r.model_meta['labels'])} labels: {', '.join(r.model_meta['labels'])}",
            f"- **What trains**: {trained_text(r)}",
            f"- **Data**: {data_description(r)}, languages: {langs}; "
            f"{p['n_train']} training rows, {p['n_val']} validation rows (80/20 iterative stratification, split seed {c.split_seed}, training seed {c.seed})",
            f"- **Training**: loss `{c.loss}`"
            + (f" (alpha {c.focal_alpha}, gamma {c.focal_gamma})" if c.loss == "focal" else "")
            + (" with positive-class weights" if c.pos_weight else "")
            + WEIGHTING_TEXT[c.loss_weighting].format(c=c)
            + f", AdamW lr {c.learning_rate:g}, weight decay {c.weight_decay:g}, batch {c.batch_size}, "
            f"up to {c.epochs} epochs (patience {c.patience}), max length {c.max_length}, "
            f"{'padding to max length' if c.pad_to_max_length else 'dynamic padding'}; best epoch {s['best_epoch']} "
            f"of {s['epochs_run']}",
            f"- **Hardware**: {hw['cpu']}, {hw['cores']} cores, GPU: {hw['cuda'] or 'none'}; training wall time "
            f"{s['wall_seconds']:.0f} s, peak memory {s['peak_rss_mb']:.0f} MB",
            *stack_facts(r),
            "- **Software**: " + ", ".join(f"{k} {v}" for k, v in p["libraries"].items()),
            f"- **Commit**: `{p['commit']}`, run `{r.run_dir.name}`, profile `{c.profile}`",
        ]
    )


def interpret_facts(r: RunResults) -> str:
    i = r.interpret
    if not i:
        return "The interpretability step has not been run for this run."
    rank, label, word = i["case_word_rank"], i["case_label"], i["case_word"]
    rank_text = (
        f"“{word}” ranks **{rank}** among the top-{r.config.lime_num_features} LIME features for *{label}* "
        f"(weight {i['case_word_weight']:+.4f})"
        if rank
        else f"“{word}” is not among the top-{r.config.lime_num_features} LIME features for *{label}*"
    )
    who = (
        f"The views below are those of the ensemble's largest-weight member `{i['explained_member']}` (attention "
        "belongs to one network). "
        if i.get("explained_member")
        else ""
    )
    return (
        who + f"For the case study “{i['case_study']}”, the model gives {label} probability "
        f"{i['case_probabilities'][label]:.3f}, and {rank_text}. "
        f"One LIME explanation ({i['lime_num_samples']} perturbations, all labels) took "
        f"{i['lime_seconds_one_explanation']:.1f} s. Over {i['agreement_sentences']} "
        f"sentence{'' if i['agreement_sentences'] == 1 else 's'} of "
        f"{i['agreement_set']}, the mean Spearman correlation per word between LIME weights and raw "
        f"layer-1/head-1 attention is {f3(i['mean_rho_lime_attention'])}, and between LIME and attention "
        f"rollout {f3(i['mean_rho_lime_rollout'])}."
    )


def strength(rho) -> str:
    """Words for a correlation's size, so the prose follows the measured figure."""
    if rho is None or pd.isna(rho):
        return "not measured"
    size = abs(rho)
    word = "essentially absent" if size < 0.1 else "weak" if size < 0.3 else "moderate" if size < 0.5 else "strong"
    return word if size < 0.1 else f"{word} and {'positive' if rho > 0 else 'negative'}"


def discussion(r: RunResults) -> str:
    """Results stated from the run, with the seed's recommendations as next steps."""
    h = r.metrics["headline"]
    per = r.per_label[(r.per_label["set"] == h["set"]) & (r.per_label["thresholds"] == "tuned_thresholds")]
    best, worst = per.loc[per["f1"].idxmax()], per.loc[per["f1"].idxmin()]
    lo, hi = h["macro_f1_ci95"]
    n = int(r.eval_summary.loc[r.eval_summary["set"] == h["set"], "n"].iloc[0])
    gain = h["macro_f1"] - h["macro_f1_at_0.5"]
    i = r.interpret
    lines = [
        f"- Measured on {h['set']} ({n} texts): macro-F1 {h['macro_f1']:.3f} [{lo:.3f}, {hi:.3f}], macro-precision "
        f"{h['macro_precision']:.3f}, macro-recall {h['macro_recall']:.3f}. The interval is {hi - lo:.3f} wide: "
        "differences smaller than that between two runs on this set are not evidence.",
        f"- Tuning thresholds on the validation part changed macro-F1 by {gain:+.3f} against the fixed 0.5.",
        f"- The easiest label is *{best['label']}* (F1 {best['f1']:.3f}, support {int(best['support'])}); the hardest "
        f"is *{worst['label']}* (F1 {worst['f1']:.3f}, support {int(worst['support'])}).",
    ]
    effects = label_effects(r)
    if len(effects):
        lines.append(
            "- Per label, the stack against its best member alone (validation, cross-fitted): "
            + ", ".join(
                f"*{e['label']}* {e['stack']:.3f} ({e['stack_minus_best_member'] * 100:+.1f} points against "
                f"`{e['best_member']}`)"
                for e in effects.to_dict("records")
            )
            + "."
        )
    lines += sweep_label_effects()
    if i:
        ra, rr = i["mean_rho_lime_attention"], i["mean_rho_lime_rollout"]
        lines.append(
            f"- Agreement between LIME and attention is {strength(ra)} for raw layer-1/head-1 attention "
            f"(mean Spearman {f3(ra)}) and {strength(rr)} for rollout ({f3(rr)}); attention is shown as a "
            "view of the model's mechanics, not as its reasons."
        )
    lines += [
        "",
        "Next steps, as the seed recommends: paraphrase augmentation to reduce reliance on single words; deeper "
        "layers and more heads in the attention analysis (the layer-by-head summary above is a start); and "
        "hyperparameter tuning (`make sweep` crosses loss, loss weighting, learning rate and epochs over several "
        "seeds; its tables follow).",
    ]
    return "\n".join(lines)


def sweep_citation(reports_dir: Path = Path("reports")):
    """Every `make sweep` table of this checkout (mean ± sd over seeds), oldest first, cited with where it lives."""
    from IPython.display import HTML, Markdown

    found = sorted(Path(reports_dir).glob("sweep-*/summary.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        return Markdown("")  # no sweep in this checkout: nothing to cite
    return HTML(TABLE_STYLE + "".join(_sweep_table(path) for path in found))


def _sweep_table(path: Path) -> str:
    spec = read_json(path.parent / "sweep.json") if (path.parent / "sweep.json").is_file() else {}
    t = pd.read_csv(path)
    axes = [c for c in t.columns if not c.endswith(("_mean", "_sd")) and c != "seeds"]
    shown = t[axes + ["seeds"]].copy()
    for m, name in (("val_f1_0.5", "validation macro-F1 @0.5"), ("dev_f1_tuned", "dev macro-F1 (tuned)")):
        shown[name] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(t[f"{m}_mean"], t[f"{m}_sd"])]
    shown["best epoch"] = t["best_epoch_mean"].round(1)
    where = path.resolve().relative_to(Path.cwd()) if path.resolve().is_relative_to(Path.cwd()) else path
    text = (
        f"Sweep `{path.parent.name}` (profile `{Path(str(spec.get('profile', '?'))).stem}`, seeds "
        f"{spec.get('seeds', '?')}, commit `{spec.get('provenance', {}).get('commit', '?')}`; `{where}`), "
        "mean ± sd over seeds, best validation mean first:"
    )
    return f"<p>{text}</p>" + shown.to_html(index=False, border=0, classes="dataframe")


def provenance_facts(r: RunResults) -> str:
    p = r.provenance
    rows = [
        f"- commit `{p['commit']}`; seed {r.config.seed}; processes {p.get('processes', 1)}",
        "- configuration: " + ", ".join(f"`{k}={v}`" for k, v in r.config.to_dict().items()),
        "- data files (sha256, "
        + ("recorded when the split was made):" if r.config.own_data else "verified against the shipped manifest):"),
    ]
    rows += [f"  - `{k}` `{v[:16]}…`" for k, v in p["data"].items()]
    return "\n".join(rows)


TABLE_STYLE = (
    "<style>table.dataframe{font-size:0.75em} table.dataframe td{max-width:28em}"
    " .jp-OutputArea-output{overflow-x:visible}</style>"
)


def table(df: pd.DataFrame, digits: int = 3):
    """A compact HTML table without the index column, for the rendered report (and its PDF page width)."""
    from IPython.display import HTML

    return HTML(
        TABLE_STYLE
        + df.to_html(index=False, border=0, classes="dataframe", na_rep="—", float_format=lambda x: f"{x:.{digits}f}")
    )
