"""emotionlib: multi-label emotion classification by fine-tuning a transformer encoder.

import emotionlib
clf = emotionlib.load("runs/<run_id>")          # or backend="onnx"
clf.predict(["I can't believe how happy I feel!"])
"""

import os
import sys

# PyTorch's OpenMP (libgomp) reads this once, when torch is first imported: a thread waiting at a barrier spins
# 30,000 times before it sleeps instead of 300,000. Beside another process on a 2-core machine the spinning idle
# thread took the core the working one needed: a MiniLM epoch whose competitor arrived as the model loaded took
# 11.9-12.3 s with this against 14.9-17.3 s without (quiet 8.7 s), for quiet epochs 4% slower (8.91 s against 8.58 s,
# interleaved) (docs/speed.md, "A busy machine"). A value the user set is kept; imported after torch, emotionlib
# leaves it unset, as libgomp has already read it (provenance records the value, None for libgomp's default).
if "torch" not in sys.modules:
    os.environ.setdefault("GOMP_SPINCOUNT", "30000")

from emotionlib import log  # noqa: E402 (after the OpenMP setting, which must come before torch)
from emotionlib.provenance import package_version as version  # noqa: E402


__version__ = version()
log.setup()  # messages as lines on standard output unless the application routes the `emotionlib` logger itself


def load(run_dir, backend: str = "torch"):
    """The trained run in `run_dir` as a `Classifier` (labels, tuned thresholds, `predict`, `predict_proba`)."""
    from emotionlib.classifier import Classifier

    return Classifier(run_dir, backend)
