"""emotionlib: multi-label emotion classification by fine-tuning a transformer encoder.

    import emotionlib
    clf = emotionlib.load("runs/<run_id>")          # or backend="onnx"
    clf.predict(["I can't believe how happy I feel!"])
"""
from emotionlib import log
from emotionlib.provenance import package_version as version


__version__ = version()
log.setup()  # messages as lines on standard output unless the application routes the `emotionlib` logger itself


def load(run_dir, backend: str = "torch"):
    """The trained run in `run_dir` as a `Classifier` (labels, tuned thresholds, `predict`, `predict_proba`)."""
    from emotionlib.classifier import Classifier

    return Classifier(run_dir, backend)
