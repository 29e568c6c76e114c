"""Cross-lingual transfer in the spirit of Track C: for each language in `holdout_languages`, a run trained on
the run's other languages (`graph.holdout_config`, trained by `build.build` with the run) and scored on the held-out
one zero-shot, beside the run that trained on it."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from emotionlib import graph as G
from emotionlib.run_config import read_config
from emotionlib.runs import RunLayout, atomic_path
from emotionlib import plots
from emotionlib.evaluate import evaluate

log = logging.getLogger(__name__)

# top-level families (Glottolog), so that the held-out languages can be chosen across families
FAMILIES = {
    "afr": "Indo-European",
    "amh": "Afro-Asiatic",
    "arq": "Afro-Asiatic",
    "ary": "Afro-Asiatic",
    "chn": "Sino-Tibetan",
    "deu": "Indo-European",
    "eng": "Indo-European",
    "esp": "Indo-European",
    "hau": "Afro-Asiatic",
    "hin": "Indo-European",
    "ibo": "Atlantic-Congo",
    "kin": "Atlantic-Congo",
    "mar": "Indo-European",
    "orm": "Afro-Asiatic",
    "pcm": "English-lexifier creole",
    "ptbr": "Indo-European",
    "ptmz": "Indo-European",
    "ron": "Indo-European",
    "rus": "Indo-European",
    "som": "Afro-Asiatic",
    "sun": "Austronesian",
    "swa": "Atlantic-Congo",
    "swe": "Indo-European",
    "tat": "Turkic",
    "tir": "Afro-Asiatic",
    "ukr": "Indo-European",
    "vmw": "Atlantic-Congo",
    "yor": "Atlantic-Congo",
}


def holdout_table(run_dir: str | Path) -> pd.DataFrame | None:
    """Score each held-out run (trained with the run, `build.build`; an evaluation that is current is skipped),
    then write the table and its chart under the run's eval/ folder; None when the run holds out no language.
    Needs the run's own evaluation."""
    layout = RunLayout(run_dir)
    cfg = read_config(layout.root)
    if not cfg.holdout_languages:
        return None
    if not layout.comparison.is_file():
        raise FileNotFoundError(f"{layout.comparison}: evaluate the run before its cross-lingual runs")
    joint = pd.read_csv(layout.comparison).set_index("lang")
    rows = []
    for lang in cfg.holdout_languages:
        held = G.holdout_config(cfg, lang)
        log.info(f"cross-lingual: {held.run_id} (trained on {len(held.languages)} languages, scored on {lang})")
        evaluate(held.run_dir)
        zero = pd.read_csv(RunLayout(held.run_dir).comparison).set_index("lang").loc[lang]
        ours = joint.loc[lang] if lang in joint.index else None
        rows.append(
            {
                "lang": lang,
                "family": FAMILIES.get(lang, "?"),
                "scored_on": zero["scored_on"],
                "zero_shot": zero["emotionlib"],
                "in_language": None if ours is None else ours["emotionlib"],
                "tfidf_lr": zero.get("tfidf_lr"),
                "best_published": zero.get("best_published"),
                "run": held.run_id,
            }
        )
    table = pd.DataFrame(rows)
    table.insert(5, "zero_shot_minus_in_language", (table["zero_shot"] - table["in_language"]).round(2))
    with atomic_path(layout.crosslingual) as tmp:
        table.to_csv(tmp, index=False)
    plots.language_bars(
        table,
        ["zero_shot", "in_language", "tfidf_lr"],
        "macro-F1 x100: trained without the language (zero-shot) and with it",
        layout.crosslingual_png,
    )
    return table
