"""Ensembles: weights and thresholds from the validation part only, members checked, a run directory of its own."""

import numpy as np
import pytest

import emotionlib
from conftest import run_here
from emotionlib.config import load_config
from emotionlib.combine.weights import EnsembleError, best_f1_per_label, fit_weights
from emotionlib.combine.ensemble import fit_ensemble
from emotionlib.runs import RunLayout, read_json

pytestmark = pytest.mark.xdist_group("test_combine_ensemble")  # its module-scoped fixture is made on one worker


def test_fit_weights_prefers_the_informative_member_and_ties_go_to_equal_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(300, 3)).astype(float)
    mask = np.ones_like(y)
    good = np.clip(0.25 + y * 0.5 + rng.normal(0, 0.2, y.shape), 0, 1)  # informative, not separable
    noise = rng.random(y.shape)
    w = fit_weights([noise, good], y, mask)
    assert w[1] >= 0.8 and np.isclose(w.sum(), 1.0)
    best = np.nanmean(best_f1_per_label(y, w[0] * noise + w[1] * good, mask))
    assert best >= np.nanmean(best_f1_per_label(y, good, mask))  # never worse than the best single member
    assert np.allclose(fit_weights([good, good.copy()], y, mask), [0.5, 0.5])
    assert np.allclose(fit_weights([good], y, mask), [1.0])
    many = fit_weights([noise] * 5 + [good], y, mask)  # more than five members: greedy selection
    assert many[-1] >= 0.8 and np.isclose(many.sum(), 1.0)


def test_best_f1_per_label_equals_sklearn_at_the_best_threshold():
    from sklearn.metrics import f1_score

    from emotionlib.metrics import THRESHOLD_GRID

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, size=(200, 2)), rng.random((200, 2))
    mask = np.ones((200, 2))
    mask[:50, 1] = 0
    got = best_f1_per_label(y, p, mask)
    rows = mask[:, 1] > 0
    want = [
        max(f1_score(y[:, 0], p[:, 0] >= t) for t in THRESHOLD_GRID),
        max(f1_score(y[rows, 1], p[rows, 1] >= t) for t in THRESHOLD_GRID),
    ]
    assert np.allclose(got, want)


@pytest.fixture(scope="module")
def second_run(smoke_cfg):
    """A second smoke run on the same split (another training seed)."""
    from emotionlib.evaluate import evaluate
    from emotionlib.train import train

    run = train(smoke_cfg.replace(run_id="smoke-seed7", seed=7, learning_rate=3e-3))
    evaluate(run)
    return run


def test_an_ensemble_of_one_run_equals_that_run(smoke_run, tmp_path):
    out = fit_ensemble([smoke_run], tmp_path / "ens-one")
    texts = ["I can't believe how happy I feel!", "The storm scared me.", "ok"]
    single, ens = emotionlib.load(smoke_run), emotionlib.load(out)
    assert np.array_equal(single.predict_proba(texts), ens.predict_proba(texts))
    assert np.allclose(single.thresholds, ens.thresholds) and single.labels == ens.labels


def test_weights_and_thresholds_never_see_the_set_they_are_scored_on(smoke_run, second_run, tmp_path, monkeypatch):
    """Spy on every text the fit reads: only the validation part (members) and the training part (baseline)."""
    from emotionlib import baseline as B
    from emotionlib import data as D
    from emotionlib.split import training_parts
    from emotionlib.classifier import Classifier

    cfg = load_config(str(smoke_run / "config.yaml"))
    train_parts, val_parts = training_parts(cfg, RunLayout(smoke_run))
    seen_predict, seen_fit = [], []
    real_proba = Classifier.predict_proba
    monkeypatch.setattr(
        Classifier,
        "predict_proba",
        lambda self, texts, *a, **k: seen_predict.extend(texts) or real_proba(self, texts, *a, **k),
    )
    real_pipeline = B.make_pipeline

    def spy_pipeline(seed=42):
        pipe = real_pipeline(seed)
        fit = pipe.fit
        pipe.fit = lambda texts, y: seen_fit.extend(texts) or fit(texts, y)
        return pipe

    monkeypatch.setattr(B, "make_pipeline", spy_pipeline)
    fit_ensemble([smoke_run, second_run], tmp_path / "ens", with_baseline=True)
    dev = D.DataSource.resolve().load("dev", "eng")
    assert set(seen_predict) == set(val_parts[0].texts)
    assert set(seen_fit) == set(train_parts[0].texts)
    assert not (set(dev.texts) - set(val_parts[0].texts) - set(train_parts[0].texts)) & set(seen_predict + seen_fit)


def test_ensemble_is_a_run_that_evaluate_predict_and_load_accept(smoke_run, second_run, tmp_path):
    out = tmp_path / "ens"
    res = run_here("ensemble", "--runs", str(smoke_run), str(second_run), "--with-baseline", "--out", str(out))
    assert res.returncode == 0, res.stderr
    meta = read_json(RunLayout(out).metadata)
    assert [m["name"] for m in meta["members"]] == [smoke_run.name, second_run.name, "tfidf_lr"]
    assert np.isclose(sum(m["weight"] for m in meta["members"]), 1.0)
    metrics = read_json(RunLayout(out).metrics)
    assert metrics["headline"]["set"] == "dev/eng"
    # the ensemble's probabilities are the weighted mean of its members'
    texts = ["so happy today", "I am terrified", "what a surprise"]
    members = [emotionlib.load(smoke_run).predict_proba(texts), emotionlib.load(second_run).predict_proba(texts)]
    from emotionlib.baseline import SavedBaseline

    members.append(SavedBaseline(RunLayout(out).baseline_model).predict_proba(texts))
    expected = sum(m["weight"] * p for m, p in zip(meta["members"], members))
    assert np.allclose(emotionlib.load(out).predict_proba(texts), expected, atol=1e-6)
    csv = tmp_path / "in.csv"
    csv.write_text("id,text\na,so happy\nb,so sad\n", encoding="utf-8")
    res = run_here("predict", "--run", str(out), "--input", str(csv), "--output", str(tmp_path / "o.csv"))
    assert res.returncode == 0, res.stderr
    res = run_here("export", "--run", str(out), "--format", "onnx", "--out", str(tmp_path / "x"))
    assert res.returncode != 0 and "ensemble" in res.stderr and not (tmp_path / "x").exists()


def test_members_must_share_the_split_and_be_unchanged(smoke_run, smoke_cfg, tmp_path):
    from emotionlib.train import train

    other = train(smoke_cfg.replace(run_id="smoke-split7", split_seed=7))
    with pytest.raises(EnsembleError, match="smoke-split7.*validation part differs"):
        fit_ensemble([smoke_run, other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(EnsembleError, match="not a trained run"):
        fit_ensemble([smoke_run, tmp_path], tmp_path / "bad2")
    out = fit_ensemble([other], tmp_path / "ens-other")
    weights = RunLayout(other).weights
    weights.write_bytes(weights.read_bytes() + b"\0")  # the member changes after the fit
    with pytest.raises(EnsembleError, match="weights changed"):
        emotionlib.load(out)
