"""Per-language stacking: members fitted on each language's training part, weights and thresholds on its
validation part only, cross-fitted figures, saved without pickles, and used with the texts' language."""

import numpy as np
import pandas as pd
import pytest

import emotionlib
from conftest import run_here
from emotionlib import graph as G
from emotionlib.combine import langstack as L
from emotionlib.combine import stack_fit as F
from emotionlib import dataset as DS
from emotionlib.config import ConfigError, load_config
from emotionlib.metrics import tune_thresholds
from emotionlib.runs import RunLayout, read_json

pytestmark = pytest.mark.xdist_group("test_combine_langstack")  # the stacked run (conftest) is made on one worker


def test_the_one_threshold_tuner_equals_a_per_threshold_f1_search_on_random_data():
    from sklearn.metrics import f1_score

    from emotionlib.metrics import THRESHOLD_GRID

    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.integers(0, 2, size=(120, 4))
        y[:, 3] = 0  # a label without positives: every threshold ties, 0.5 is kept
        p = rng.random((120, 4))
        expected = []
        for j in range(4):  # the search written out: best F1, ties to the threshold nearest 0.5
            f = np.array([f1_score(y[:, j], p[:, j] >= t, zero_division=0) for t in THRESHOLD_GRID])
            top = np.flatnonzero(np.isclose(f, f.max()))
            expected.append(THRESHOLD_GRID[top[np.argmin(np.abs(THRESHOLD_GRID[top] - 0.5))]])
        t = tune_thresholds(y, p)
        assert np.array_equal(t, expected) and t[3] == 0.5


def test_combine_weights_the_informative_member_and_keeps_the_better_c():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(400, 3))
    good = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, y.shape), 0, 1)
    noise = rng.random(y.shape)
    fit = F.combine({"network": noise, "features_lr C=0.01": noise[::-1].copy(), "features_lr C=0.1": good}, y)
    assert fit["names"] == ["network", "features_lr C=0.1"]
    assert fit["weights"][1] >= 0.8 and np.isclose(fit["weights"].sum(), 1)


def test_cross_fitting_never_fits_on_the_rows_it_predicts(monkeypatch):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(400, 3))
    row = np.tile((np.arange(400) / 1000)[:, None], (1, 3)).astype(np.float32)  # each row's index, as a member
    fitted_on, real = [], F.combine
    monkeypatch.setattr(
        F,
        "combine",
        lambda probs, y: fitted_on.append(set(np.rint(probs["network"][:, 0] * 1000).astype(int))) or real(probs, y),
    )
    F.cross_fit({"network": row}, y, folds=5, seed=0)
    held = [set(range(400)) - rows for rows in fitted_on]
    assert len(held) == 5 and all(70 <= len(h) <= 90 for h in held)
    assert set().union(*held) == set(range(400)) and sum(map(len, held)) == 400  # every row predicted once


def test_features_lr_folds_the_scaler_into_its_coefficients():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(3, 5, size=(200, 8)).astype(np.float32)
    y = np.stack([(x[:, 0] + rng.normal(0, 2, 200) > 3), np.zeros(200)], 1).astype(int)
    path = F.fit_features_lr(x, y, [1.0, 0.01], 0)
    assert list(path) == [0.01, 1.0]  # ascending: each C starts from the previous fit
    for c, (coef, intercept) in path.items():
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=1000))
        want = ref.fit(x, y[:, 0]).predict_proba(x)[:, 1]
        got = L.sigmoid(x @ coef.T + intercept)
        assert np.allclose(got[:, 0], want, atol=1e-2)
        assert np.all(got[:, 1] < 1e-6)  # a label never positive in training: never predicted


def test_config_refuses_bad_stack_settings():
    for bad in (
        {"stack": ["network", "svm"]},
        {"stack": ["network", "network"]},
        {"feature_layers": "x"},
        {"feature_layers": [1, 1]},
        {"stack_folds": 1},
        {"stack_min_val": -1},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            load_config("smoke", bad)
    assert load_config("smoke", {"feature_layers": "6,9,-1"}).feature_layers == (6, 9, -1)


def test_the_stack_is_fitted_per_language_and_saved_without_pickles(stacked_run):
    cfg, table = stacked_run
    layout = RunLayout(cfg.run_dir)
    stack = read_json(layout.stack_meta)
    assert list(table["lang"]) == ["arq", "sun"] == list(stack["languages"])
    for lang, f in stack["languages"].items():
        assert f["rule"] == "fitted on the validation part"
        assert np.isclose(sum(f["weights"].values()), 1.0) and set(f["weights"]) == set(cfg.stack)
        assert len(f["thresholds"]) == len(f["labels"]) and all(0 < t < 1 for t in f["thresholds"])
        assert 0 <= f["val_oof"] <= 1 and set(f["members_val_oof"]) == set(cfg.stack)
        assert list(f["val_oof_per_label"]) == f["labels"] and set(f["members_val_oof_per_label"]) == set(cfg.stack)
        # the macro figure is the mean of the per-label ones it was computed with
        assert np.isclose(np.mean(list(f["val_oof_per_label"].values())), f["val_oof"], atol=1e-3)
    files = sorted(p.name for p in layout.stack.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".pt", ".bin"))]
    assert "features_lr-arq.safetensors" in files and "baseline.json" in files
    # fitted once: a second call is skipped (same model and split)
    assert F.fit_stack(cfg).equals(table)


def test_evaluate_scores_the_stack_and_each_member(stacked_run):
    cfg, _ = stacked_run
    layout = RunLayout(cfg.run_dir)
    entry = read_json(layout.set_metrics("dev", "arq"))["entry"]
    assert set(entry["members_macro_f1"]) == set(cfg.stack)
    stack = read_json(layout.stack_meta)["languages"]["arq"]
    labels = entry["labels"]
    assert entry["labels"] == [lab for lab in read_json(layout.metadata)["labels"] if lab in stack["labels"]]
    # the tuned thresholds scored are the language's own, not the network's
    clf = emotionlib.load(cfg.run_dir)
    thr = clf.thresholds_for("arq")
    assert np.allclose(
        [thr[clf.labels.index(lab)] for lab in labels],
        [stack["thresholds"][stack["labels"].index(lab)] for lab in labels],
    )
    rows = pd.read_csv(layout.stack_languages)
    assert list(rows["lang"]) == ["arq", "sun"] and {"network", "features_lr", "tfidf_lr"} <= set(rows)


def test_a_stacked_run_predicts_with_the_language(stacked_run, tmp_path):
    cfg, _ = stacked_run
    clf = emotionlib.load(cfg.run_dir)
    with pytest.raises(ValueError, match="give the texts' language"):
        clf.predict(["x"])
    out = clf.predict(["a text", "another text"], lang="sun")
    assert len(out) == 2 and set(out[0]["probabilities"]) == set(clf.labels)
    stack = read_json(RunLayout(cfg.run_dir).stack_meta)["languages"]["sun"]
    absent = [lab for lab in clf.labels if lab not in stack["labels"]]
    assert all(out[0]["probabilities"][lab] == 0 for lab in absent)  # a label the language lacks
    zero_shot = clf.predict_proba(["a text"], lang="eng")  # not stacked: the network alone
    from emotionlib.classifier import load_run
    from emotionlib.predict import predict_proba

    network, tok, meta = load_run(cfg.run_dir, stack=False)
    assert np.allclose(zero_shot, predict_proba(network, tok, ["a text"], meta["max_length"]), atol=1e-6)
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["one", "two"]}).to_csv(src, index=False)
    r = run_here(
        "predict", "--run", str(cfg.run_dir), "--input", str(src), "--output", str(tmp_path / "o.csv"), "--lang", "arq"
    )
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path / "o.csv")["id"]) == ["a", "b"]
    with pytest.raises(ValueError, match="backend 'torch'"):
        emotionlib.load(cfg.run_dir, backend="onnx")


def test_a_small_validation_part_gets_the_fixed_rule(stacked_run):
    cfg, _ = stacked_run
    from emotionlib.split import training_parts
    from emotionlib.model import load_model
    from emotionlib.encoders import resolve_encoder

    tr, va = (parts[0] for parts in training_parts(cfg))
    network, tok, meta = load_model(RunLayout(cfg.run_dir).model)
    feats = F.LayerFeatures(resolve_encoder(cfg.model), [1], cfg.max_length)
    cached = dict(zip(tr.texts + va.texts, feats(tr.texts + va.texts, progress=False)))
    members = F.Members(meta, network, tok, cached=cached)
    record, saved = F.fit_language(
        cfg.replace(stack_min_val=10_000, stack=["features_lr", "tfidf_lr"]), tr, va, members
    )
    assert record["rule"].startswith("fixed")
    assert record["weights"] == {"features_lr": 0.5, "tfidf_lr": 0.5} and set(record["thresholds"]) == {0.5}
    assert record["features_lr_c"] == F.SMALL_C and set(saved) == {"features_lr", "tfidf_lr"}


def test_the_report_counts_from_the_stack_table(stacked_run):
    from types import SimpleNamespace

    from emotionlib.report import label_effects, stack_count, stack_section

    cfg, _ = stacked_run
    layout = RunLayout(cfg.run_dir)
    t = pd.read_csv(layout.stack_languages)
    assert list(t["scored_on"]) == ["test", "test"] and layout.stack_minus_best_png.is_file()
    assert np.allclose(t["stack_minus_best"], (t["stack"] - t["best_published"]).round(2), atol=0.011)
    text = stack_count(SimpleNamespace(layout=layout))
    above = int((t["stack_minus_best"] > 0).sum())
    assert f"above the best published figure on **{above}**" in text and f"**{t['stack'].mean():.2f}**" in text
    assert "Romanian" in text and len(stack_section(SimpleNamespace(layout=layout)).data) > 0
    effects = label_effects(SimpleNamespace(layout=layout))
    stack = read_json(layout.stack_meta)["languages"]
    anger = np.mean([f["val_oof_per_label"]["anger"] for f in stack.values() if "anger" in f["labels"]])
    row = effects.set_index("label").loc["anger"]
    assert np.isclose(row["stack"], anger, atol=1e-4) and row["best_member"] in cfg.stack
    assert np.isclose(row["stack_minus_best_member"], row["stack"] - row[list(cfg.stack)].max(), atol=2e-4)


def test_config_checks_the_stacks_further_runs():
    cfg = load_config(
        "smoke", {"run_id": "smoke", "stack": ["network"], "stack_runs": ["seed=43", "pooling=mean learning_rate=1e-4"]}
    )
    (n1, c1), (n2, c2) = G.member_configs(cfg)
    assert (n1, c1.run_id, c1.seed, c1.stack, c1.stack_runs) == ("network-m1", "smoke-m1", 43, (), ())
    assert (n2, c2.pooling, c2.learning_rate, c2.seed) == ("network-m2", "mean", 1e-4, cfg.seed)
    for bad in (
        {"stack_runs": ["seed=43"]},
        {"stack": ["network"], "stack_runs": ["languages=deu"]},
        {"stack": ["network"], "stack_runs": ["seed"]},
        {"stack": ["network"], "stack_runs": ["colour=red"]},
        {"stack": ["network"], "stack_runs": ["epochs=many"]},
    ):
        with pytest.raises(ConfigError, match="stack_runs"):
            load_config("smoke", bad)


@pytest.mark.slow
def test_further_runs_are_trained_once_and_stacked_beside_the_network(smoke_cfg):
    """One language (arq), the run's network, a second seed and a mean-pooled variant, and TF-IDF: the missing
    runs are trained by fit_stack, weighed per language like any member, and used by evaluate and predict."""
    from emotionlib.evaluate import evaluate
    from emotionlib.build import build

    cfg = smoke_cfg.replace(
        run_id="smoke-runs",
        languages=["arq"],
        max_train_rows=300,
        stack=["network", "tfidf_lr"],
        stack_runs=["seed=7", "pooling=mean"],
        stack_min_val=20,
    )
    build(cfg)
    table = F.fit_stack(cfg)
    runs = cfg.run_dir.parent
    assert (runs / "smoke-runs-m1" / "train_summary.json").is_file() and (runs / "smoke-runs-m2").is_dir()
    stack = read_json(RunLayout(cfg.run_dir).stack_meta)
    f = stack["languages"]["arq"]
    assert stack["members"] == ["network", "tfidf_lr", "network-m1", "network-m2"]
    assert f["rule"] == "fitted on the validation part" and set(f["weights"]) == set(stack["members"])
    assert {"network-m1_val_oof", "w_network-m2"} <= set(table.columns)
    assert stack["runs"]["network-m2"]["stack_runs_entry"] == "pooling=mean"
    mtime = (runs / "smoke-runs-m1" / "model" / "model.safetensors").stat().st_mtime
    assert F.fit_stack(cfg).equals(table)  # current: nothing trained or fitted again
    assert (runs / "smoke-runs-m1" / "model" / "model.safetensors").stat().st_mtime == mtime
    evaluate(cfg.run_dir)
    entry = read_json(RunLayout(cfg.run_dir).set_metrics("dev", "arq"))["entry"]
    assert set(entry["members_macro_f1"]) == set(stack["members"])
    clf = emotionlib.load(cfg.run_dir)
    texts = ["I am so angry", "what a lovely day"]
    probs = clf.model.member_proba(texts, "arq")
    assert set(probs) == set(stack["members"])
    assert not np.allclose(probs["network"], probs["network-m1"])  # another seed, another network
    assert clf.predict_proba(texts).shape == (2, len(clf.labels))  # one language: no lang needed
    # a member whose weights changed since the stack was fitted is refused by name
    from safetensors.torch import load_file, save_file

    path = runs / "smoke-runs-m2" / "model" / "model.safetensors"
    state = load_file(path)
    save_file({k: v + 1 for k, v in state.items()}, path)
    with pytest.raises(ValueError, match="network-m2 is missing or its weights changed"):
        emotionlib.load(cfg.run_dir).model.member_proba(texts, "arq")


@pytest.mark.slow
def test_a_frozen_head_trains_on_the_stacks_own_feature_pass(tmp_path, monkeypatch):
    """Frozen mean-pooled head + a stack over layers that include the last: one encoding pass serves both steps,
    and the saved classifier, from the texts, gives what the head gave from that block."""
    from emotionlib.metrics import language_scores
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.split import training_parts
    from emotionlib.train import train

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    cfg = load_config(
        "smoke",
        {
            "runs_dir": str(tmp_path),
            "run_id": "one-pass",
            "languages": ["arq"],
            "max_train_rows": 200,
            "freeze_layers": -1,
            "pooling": "mean",
            "epochs": 2,
            "learning_rate": 1e-2,
            "stack": ["network", "features_lr"],
            "feature_layers": [1, -1],
        },
    )
    run = train(cfg)
    shards = sorted((tmp_path / "cache" / "features").glob("*/*.safetensors"))
    F.fit_stack(cfg)
    # the stack wrote nothing: the training's one pass (its short first chunk and the rest) is all there is
    assert sorted((tmp_path / "cache" / "features").glob("*/*.safetensors")) == shards and len(shards) == 2
    model, tok, meta = load_model(run / "model")
    _, val = training_parts(cfg, RunLayout(run))
    ex = DS.Examples.from_splits(val, meta["labels"])
    probs = predict_proba(model, tok, ex.texts, meta["max_length"])
    f1 = language_scores(ex.y, (probs >= 0.5).astype(int), ex.mask, ex.langs, ex.labels)["mean_macro_f1"]
    assert f1 == pytest.approx(read_json(run / "train_summary.json")["best_val_macro_f1"], abs=1e-6)


def test_config_checks_the_cross_fit_network_member():
    cfg = load_config(
        "smoke",
        {
            "run_id": "smoke",
            "stack": ["network", "tfidf_lr"],
            "stack_network_folds": 3,
            "feature_layers": [1, -1],
            "stack_min_val": 20,
        },
    )
    net = G.network_config(cfg)
    assert (net.stack, net.stack_network_folds, net.feature_layers, net.stack_min_val) == ((), 0, (-1,), 100)
    assert (net.model, net.seed, net.learning_rate) == (cfg.model, cfg.seed, cfg.learning_rate)
    for bad in (
        {"stack": ["network"], "stack_network_folds": 1},
        {"stack": ["tfidf_lr"], "stack_network_folds": 3},
        {"stack_network_folds": 2},
        {"stack": ["network"], "stack_runs": ["stack_network_folds=2"]},
    ):
        with pytest.raises(ConfigError, match="stack_network_folds|stack_runs"):
            load_config("smoke", bad)


@pytest.mark.slow
def test_a_cross_fit_ensemble_is_the_stacks_network_member(smoke_cfg):
    """stack_network_folds=2: two networks of the run's config, each trained without one fold of the training part,
    under the run's network-folds/; their mean is the network member when fitting and when predicting, nothing is
    trained twice, and a changed fold network is refused by name."""
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.report import fold_network_facts
    from emotionlib.build import build

    cfg = smoke_cfg.replace(
        run_id="smoke-folds",
        languages=["arq"],
        max_train_rows=300,
        stack=["network", "tfidf_lr"],
        stack_network_folds=2,
        stack_min_val=20,
    )
    build(cfg)
    table = F.fit_stack(cfg)
    folds = cfg.run_dir / G.FOLDS_DIR
    assert (folds / "kfold.json").is_file() and [p.name for p in sorted(folds.glob("fold-?"))] == ["fold-0", "fold-1"]
    stack = read_json(RunLayout(cfg.run_dir).stack_meta)
    info = stack["network_folds"]
    assert info["runs"] == ["fold-0", "fold-1"] and len(info["weights_sha256"]) == 2 and stack["network_block"] is None
    assert "mean of 2 networks" in fold_network_facts(info)
    texts = ["I am so angry", "what a lovely day", "they scared me"]
    by_fold = []
    for i in range(2):
        model, tok, meta = load_model(folds / f"fold-{i}" / "model")
        by_fold.append(predict_proba(model, tok, texts, meta["max_length"]))
    own, tok, meta = load_model(cfg.run_dir / "model")
    layout = RunLayout(cfg.run_dir)  # the run's own network is fold 0's, adopted, not a third training
    assert read_json(layout.train_summary)["adopted_from"] == "network-folds/fold-0"
    assert layout.weights.read_bytes() == (folds / "fold-0" / "model" / "model.safetensors").read_bytes()
    assert np.allclose(predict_proba(own, tok, texts, meta["max_length"]), by_fold[0])
    clf = emotionlib.load(cfg.run_dir)
    got = clf.model.member_proba(texts, "arq")["network"]
    cols = [clf.labels.index(lab) for lab in stack["languages"]["arq"]["labels"]]
    assert np.allclose(got, np.mean(by_fold, axis=0)[:, cols], atol=1e-5)
    assert not np.allclose(got, by_fold[0][:, cols], atol=1e-3)  # the member is the mean, not the run's own
    mtime = (folds / "fold-1" / "model" / "model.safetensors").stat().st_mtime
    assert F.fit_stack(cfg).equals(table)  # current: nothing trained or fitted again
    assert (folds / "fold-1" / "model" / "model.safetensors").stat().st_mtime == mtime
    from safetensors.torch import load_file, save_file

    path = folds / "fold-1" / "model" / "model.safetensors"
    save_file({k: v + 1 for k, v in load_file(path).items()}, path)
    with pytest.raises(ValueError, match="fold network is missing or its weights changed"):
        emotionlib.load(cfg.run_dir).model.member_proba(texts, "arq")
