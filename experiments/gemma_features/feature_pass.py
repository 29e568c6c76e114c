"""EmbeddingGemma-300M frozen features (mean-pooled layers, classification prompt) for the BRIGHTER files, cached
where the per-language stack reads them (`<cache>/features/<fingerprint>/`), language by language, so that an
interrupted pass resumes. Run: python experiments/gemma_features/feature_pass.py --langs deu hin ... --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from emotionlib import data as D
from emotionlib.encoders import gemma
from emotionlib.features import LayerFeatures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--langs", nargs="+", required=True)
    ap.add_argument("--layers", nargs="+", type=int, default=list(gemma.FEATURE_LAYERS))
    ap.add_argument("--splits", nargs="+", default=list(D.SPLITS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feats = LayerFeatures(gemma.install(), args.layers, 128, prompt=gemma.PROMPT)
    source = D.DataSource.resolve()
    for lang in D.expand_languages(args.langs):
        for split in args.splits:
            if not source.has(split, lang):
                continue
            texts = list(source.load(split, lang).texts)
            t0 = time.time()
            feats(texts, D.cache_dir() / "features", args.batch_size, progress=False)
            print(
                f"{lang} {split}: {len(texts)} texts in {time.time() - t0:.1f} s "
                f"(fingerprint {feats.fingerprint}, threads {args.threads})",
                flush=True,
            )


if __name__ == "__main__":
    main()
