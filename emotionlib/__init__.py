"""emotionlib: multi-label emotion classification by fine-tuning a transformer encoder.

    import emotionlib
    clf = emotionlib.load("runs/<run_id>")          # or backend="onnx"
    clf.predict(["I can't believe how happy I feel!"])
"""
from emotionlib import log


def version() -> str:
    """The installed package's version (pyproject's), or 'unknown' when emotionlib is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("emotionlib")
    except PackageNotFoundError:
        return "unknown"


__version__ = version()
log.setup()  # messages as lines on standard output unless the application routes the `emotionlib` logger itself


def load(run_dir, backend: str = "torch"):
    """The trained run in `run_dir` as a `Classifier` (labels, tuned thresholds, `predict`, `predict_proba`)."""
    from emotionlib.classifier import Classifier

    return Classifier(run_dir, backend)
