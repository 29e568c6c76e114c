"""What scoring each distinct LIME perturbation once saves, on the texts a run's interpret step explains (the case
sentence, the examples and the agreement sentences it wrote under runs/<id>/interpret/): per text, LIME's
perturbations and the distinct ones among them, and the time of the explanation as emotionlib makes it against the
same explanation with every perturbation scored (interleaved, text by text, same seed; the weights are compared).

    python benchmarks/lime_distinct.py --run runs/quick-fwe-timed --out bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    from lime.lime_text import LimeTextExplainer

    import emotionlib.interpret as I
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.run_config import read_config
    from emotionlib.runs import RunLayout
    from levers import machine

    layout, cfg = RunLayout(args.run), read_config(args.run)
    model, tok, meta = load_model(layout.model)
    texts = [cfg.case_study, *pd.read_csv(layout.examples)["text"], *pd.read_csv(layout.agreement)["text"]]
    labels, n = meta["labels"], cfg.lime_num_samples
    names = [x for lab in labels for x in (f"not {lab}", lab)]
    scored: list[str] = []

    def counting(m, t, batch, *a, **k):
        scored.extend(batch)
        return predict_proba(m, t, batch, *a, **k)

    def every_one(batch):
        p = predict_proba(model, tok, list(batch), meta["max_length"], 128)
        return np.stack([1 - p, p], axis=2).reshape(len(batch), -1)

    I.predict_proba, rows = counting, []
    for text in texts:
        scored.clear()
        t0 = time.perf_counter()
        ours, _ = I.explain_lime(model, tok, text, labels, meta["max_length"], n, cfg.lime_num_features, cfg.seed)
        t1 = time.perf_counter()
        exp = LimeTextExplainer(class_names=names, split_expression=I.LIME_SPLIT, random_state=cfg.seed)
        exp = exp.explain_instance(
            text,
            every_one,
            labels=[2 * j + 1 for j in range(len(labels))],
            num_features=cfg.lime_num_features,
            num_samples=n,
        )
        t2 = time.perf_counter()
        same = all(
            [w for w, _ in ours[lab]] == [w for w, _ in exp.as_list(label=2 * j + 1)] for j, lab in enumerate(labels)
        )
        rows.append(
            {
                "words": len(set(I.re.split(I.LIME_SPLIT, text)) - {""}),
                "perturbations": n,
                "distinct": len(scored),
                "seconds_distinct": t1 - t0,
                "seconds_every_one": t2 - t1,
                "same_words": same,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    t = pd.DataFrame(rows)
    lines = [
        f"# LIME: each distinct perturbation scored once ({args.run}, {len(t)} texts, {n} perturbations each)",
        "",
        "machine: " + json.dumps(machine()),
        "",
        f"- perturbations scored: {t['distinct'].sum():,} of {t['perturbations'].sum():,} "
        f"({t['distinct'].sum() / t['perturbations'].sum():.0%}); texts of {t['words'].min()}-{t['words'].max()} "
        f"distinct words",
        f"- time: {t['seconds_distinct'].sum():.1f} s against {t['seconds_every_one'].sum():.1f} s every one "
        f"scored ({t['seconds_every_one'].sum() / t['seconds_distinct'].sum():.2f}x)",
        f"- the same top words for every label: {int(t['same_words'].sum())} of {len(t)} texts",
    ]
    print("\n".join(lines))
    from emotionlib.runs import atomic_write_text, make_dir, write_csv

    make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
    atomic_write_text(args.out / "lime_distinct.md", "\n".join(lines) + "\n")
    write_csv(t, args.out / "lime_distinct.csv", index=False)


if __name__ == "__main__":
    main()
