import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, run_here
from emotionlib.config import load_config
from emotionlib import dataset as DS
from emotionlib.runs import read_json


def log_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_smoke_run_writes_everything_with_provenance(smoke_run):
    for name in (
        "config.yaml",
        "provenance.json",
        "train_log.jsonl",
        "train_summary.json",
        "data/split.json",
        "model/model.safetensors",
        "model/metadata.json",
        "model/config.json",
        "model/tokenizer.json",
    ):
        assert (smoke_run / name).is_file(), name
    prov = read_json(smoke_run / "provenance.json")
    assert prov["commit"] and prov["libraries"]["torch"].startswith("2.13") and prov["seed"] == 42
    from emotionlib.data import manifest

    assert set(prov["data"]) == {f"track_a/{s}/eng.csv" for s in ("train", "dev", "test")}
    assert all(prov["data"][k] == manifest()[k] for k in prov["data"])
    meta = read_json(smoke_run / "model" / "metadata.json")
    assert meta["labels"] == ["anger", "fear", "joy", "sadness", "surprise"] and meta["max_length"] == 128
    assert len(meta["thresholds"]) == 5 and meta["thresholds_fitted_on"] == "validation part"
    assert not (smoke_run / "checkpoint").exists()


def test_thresholds_are_fitted_on_the_validation_part_only(smoke_run, smoke_cfg):
    from emotionlib.dataset import Examples
    from emotionlib.metrics import tune_thresholds
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.split import training_parts
    from emotionlib.train import label_space

    train_parts, val_parts = training_parts(smoke_cfg)
    split = read_json(smoke_run / "data" / "split.json")["languages"]["eng"]
    assert {i for p in val_parts for i in p.ids} == set(split["val_ids"])
    assert not {i for p in train_parts for i in p.ids} & set(split["val_ids"])
    model, tok, meta = load_model(smoke_run / "model")
    val = Examples.from_splits(val_parts, label_space(train_parts))
    expected = tune_thresholds(val.y, predict_proba(model, tok, val.texts))
    assert np.allclose(meta["thresholds"], expected)


def test_same_seed_same_metrics(smoke_run, smoke_cfg):
    from emotionlib.train import train

    again = train(smoke_cfg.replace(run_id="smoke-again"))
    first, second = log_of(smoke_run), log_of(again)
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
        assert a["train_loss"] == b["train_loss"] and a["val_macro_f1"] == b["val_macro_f1"]


def test_predict_writes_semeval_format_for_unlabeled_english_test(smoke_run, tmp_path, data_dir):
    out = run_here(
        "predict",
        "--run",
        str(smoke_run),
        "--input",
        str(data_dir / "track_a/test/eng.csv"),
        "--output",
        str(tmp_path / "pred_eng.csv"),
    )
    assert out.returncode == 0, out.stderr
    pred = pd.read_csv(tmp_path / "pred_eng.csv", dtype={"id": str})
    assert len(pred) == 2765 and list(pred.columns) == ["id", "anger", "fear", "joy", "sadness", "surprise"]
    assert set(np.unique(pred.drop(columns="id").to_numpy())) <= {0, 1}
    assert pred["id"].iloc[0] == "eng_test_track_a_00001"


def test_existing_run_is_not_overwritten(smoke_run, smoke_cfg):
    """The same settings again: the training step is skipped; other settings: refused, naming the field."""
    from emotionlib.config import ConfigError
    from emotionlib.train import train

    before = {p: p.read_bytes() for p in smoke_run.rglob("*") if p.is_file()}
    assert train(smoke_cfg) == smoke_run
    with pytest.raises(ConfigError, match="loss: 'bce' in the run, 'focal' given"):
        train(smoke_cfg.replace(loss="focal"))
    assert {p: p.read_bytes() for p in smoke_run.rglob("*") if p.is_file()} == before


def _train_cmd(runs: Path, run_id: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "emotionlib",
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={runs}",
        f"run_id={run_id}",
        "epochs=3",
        "max_train_rows=600",
        "checkpoint_every=10",
        "patience=0",
        *extra,
    ]


@pytest.mark.heavy
@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_same_metrics(tmp_path):
    runs = tmp_path / "runs"
    full = subprocess.run(_train_cmd(runs, "full"), cwd=ROOT, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen(_train_cmd(runs, "killed"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from emotionlib.checkpoints import checkpoint_state

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        state = checkpoint_state(runs / "killed" / "checkpoint")
        if state and state["progress"]["global_step"] >= 20:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (runs / "killed" / "train_summary.json").exists(), "the run finished before it could be killed"
    resumed = subprocess.run(_train_cmd(runs, "killed", "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout + resumed.stderr
    a, b = log_of(runs / "full"), log_of(runs / "killed")
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] == [1, 2, 3]
    for x, y in zip(a, b):
        assert x["train_loss"] == pytest.approx(y["train_loss"], abs=1e-9)
        assert x["val_macro_f1"] == y["val_macro_f1"] and x["val_loss"] == pytest.approx(y["val_loss"], abs=1e-9)
    assert (
        read_json(runs / "full" / "model" / "metadata.json")["thresholds"]
        == read_json(runs / "killed" / "model" / "metadata.json")["thresholds"]
    )


@pytest.mark.heavy
@pytest.mark.slow
def test_two_process_cpu_ddp_run_saves_a_loadable_model(tmp_path):
    from emotionlib.model import load_model

    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "emotionlib",
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path}",
        "run_id=ddp",
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_json(tmp_path / "ddp" / "provenance.json")["processes"] == 2
    model, tok, meta = load_model(tmp_path / "ddp" / "model")
    assert model.head.out_features == len(meta["labels"]) == 5


@pytest.mark.slow
def test_cross_lingual_two_languages_in_one_out(tmp_path):
    from emotionlib.evaluate import evaluate
    from emotionlib.train import train

    cfg = load_config(
        "smoke", {"runs_dir": str(tmp_path), "run_id": "xling", "languages": "eng,deu", "eval_languages": "eng,deu,esp"}
    )
    run_dir = train(cfg)
    meta = read_json(run_dir / "model" / "metadata.json")
    assert meta["labels"] == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]  # union of eng and deu
    result = evaluate(run_dir, splits=["dev"])
    sets = result["metrics"]["sets"]
    assert sets["dev/esp"]["zero_shot"] and not sets["dev/deu"]["zero_shot"]
    assert "disgust" not in sets["dev/eng"]["labels"]  # English is scored over its own five labels
    assert len(sets["dev/esp"]["labels"]) == 6


@pytest.mark.slow
def test_per_language_mode_makes_one_run_per_language(tmp_path):
    from emotionlib.build import build
    from emotionlib.train import train

    cfg = load_config(
        "smoke", {"runs_dir": str(tmp_path), "run_id": "pl", "languages": "eng,afr", "multilingual": "per_language"}
    )
    runs = build(cfg)
    assert [r.name for r in runs] == ["pl-eng", "pl-afr"]
    assert read_json(runs[1] / "model" / "metadata.json")["labels"] == ["anger", "disgust", "fear", "joy", "sadness"]
    with pytest.raises(ValueError, match="per_language"):
        train(cfg)


@pytest.mark.slow
def test_loss_weighting_static_and_dynamic_are_logged_per_epoch(tmp_path):
    from emotionlib.split import training_parts
    from emotionlib.losses import class_balanced_weights
    from emotionlib.runs import RunLayout
    from emotionlib.train import train

    base = {"runs_dir": str(tmp_path), "epochs": 2, "patience": 0}
    static = train(load_config("smoke", base | {"run_id": "static", "loss_weighting": "static"}))
    cfg = load_config("smoke", base | {"run_id": "static", "loss_weighting": "static"})
    train_parts, _ = training_parts(cfg, RunLayout(static))
    ex = DS.Examples.from_splits(train_parts, read_json(static / "model" / "metadata.json")["labels"])
    expected = class_balanced_weights(ex.y, ex.mask, cfg.class_balance_beta)
    for entry in log_of(static):
        assert np.allclose(entry["label_weights"], expected, atol=1e-4)  # fixed from the training part

    from emotionlib.losses import difficulty_weights

    dynamic = train(
        load_config(
            "smoke",
            base | {"run_id": "dynamic", "loss_weighting": "dynamic", "max_train_rows": 400, "learning_rate": 3e-3},
        )
    )
    log = log_of(dynamic)
    assert len(log) == 2
    for entry in log:  # re-set after every epoch from that epoch's validation F1 per label
        f1 = np.array(entry["val_label_f1"], dtype=float)
        assert np.allclose(entry["label_weights"], difficulty_weights(f1, ~np.isnan(f1), 1.0), atol=1e-4)
    assert any(not np.allclose(e["label_weights"], 1.0) for e in log), "a label was learnt: weights must differ"
    assert "label_weights" not in log_of(train(load_config("smoke", base | {"run_id": "plain"})))[0]


def test_patience_counts_from_the_first_epoch_that_beats_all_negative():
    from emotionlib.checkpoints import Progress
    from emotionlib.train import record_epoch

    progress, stops = Progress(), []
    for epoch, f1 in enumerate([0.0, 0.0, 0.0, 0.3, 0.2, 0.25], start=1):
        record_epoch(progress, f1, epoch)
        stops.append(progress.stale_epochs >= 2)
    assert stops == [False, False, False, False, False, True]  # the plateau at 0 does not use up the patience
    assert (progress.best_epoch, progress.best_f1) == (4, 0.3)


@pytest.mark.slow
def test_freezing_lower_layers_keeps_them_and_trains_the_rest(tmp_path):
    from safetensors.torch import load_file

    from emotionlib.model import build_classifier
    from emotionlib.encoders import resolve_encoder
    from emotionlib.train import train

    run = train(
        load_config(
            "smoke", {"runs_dir": str(tmp_path), "run_id": "f1", "freeze_layers": 1, "epochs": 1, "patience": 0}
        )
    )
    trained = load_file(run / "model" / "model.safetensors")
    start = build_classifier(resolve_encoder("tiny-xlmr"), ["x"]).state_dict()
    same = {k for k, v in start.items() if k in trained and torch.equal(v, trained[k])}
    assert any(".embeddings." in k for k in same) and any(".layer.0." in k for k in same)
    assert not any(".layer.1." in k and k.endswith("weight") for k in same)  # the top layer trained
    prov = read_json(run / "provenance.json")
    assert prov["trainable_parameters"] < sum(v.numel() for v in start.values())
    with pytest.raises(Exception, match="'freeze_layers': 9 exceeds the 2 layers of encoder 'tiny-xlmr'"):
        train(load_config("smoke", {"runs_dir": str(tmp_path), "run_id": "f9", "freeze_layers": 9}))
    assert not (tmp_path / "f9").exists()  # refused before the first write


@pytest.mark.slow
def test_frozen_word_embeddings_keep_the_token_table_alone(tmp_path):
    from safetensors.torch import load_file

    from emotionlib.model import build_classifier
    from emotionlib.encoders import resolve_encoder
    from emotionlib.train import train

    run = train(
        load_config(
            "smoke",
            {"runs_dir": str(tmp_path), "run_id": "w", "freeze_word_embeddings": True, "epochs": 1, "patience": 0},
        )
    )
    trained = load_file(run / "model" / "model.safetensors")
    start = build_classifier(resolve_encoder("tiny-xlmr"), ["x"]).state_dict()
    same = {k for k, v in start.items() if k in trained and torch.equal(v, trained[k])}
    assert {k for k in same if k.endswith("weight")} == {k for k in start if k.endswith("word_embeddings.weight")}
    table = next(v for k, v in start.items() if k.endswith("word_embeddings.weight"))
    assert (
        read_json(run / "provenance.json")["trainable_parameters"]
        == sum(v.numel() for v in trained.values()) - table.numel()
    )


@pytest.mark.slow
def test_frozen_encoder_mode_trains_the_head_on_cached_features(tmp_path, monkeypatch):
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.runs import RunLayout
    from emotionlib.split import training_parts
    from emotionlib.train import train

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    base = {"runs_dir": str(tmp_path), "freeze_layers": -1, "epochs": 3, "patience": 0, "learning_rate": 1e-2}
    run = train(load_config("smoke", base | {"run_id": "frozen"}))
    shards = sorted((tmp_path / "cache" / "features").glob("*/*.safetensors"))
    # one pass: a shard for its short first chunk (features.FIRST_CHUNK texts) and one for the rest
    assert len(shards) == 2 and read_json(run / "provenance.json")["feature_seconds"] > 0
    model, tok, meta = load_model(run / "model")
    assert meta["freeze_layers"] == -1
    # the saved model is the whole classifier: from the texts it gives what the head gave from the features
    cfg = load_config("smoke", base | {"run_id": "frozen"})
    _, val = training_parts(cfg, RunLayout(run))
    probs = predict_proba(model, tok, val[0].texts, meta["max_length"])
    from emotionlib.metrics import language_scores

    ex = DS.Examples.from_splits(val, meta["labels"])
    f1 = language_scores(ex.y, (probs >= 0.5).astype(int), ex.mask, ex.langs, ex.labels)["mean_macro_f1"]
    assert f1 == pytest.approx(read_json(run / "train_summary.json")["best_val_macro_f1"], abs=1e-6)
    # the encoder did not move, and a second seed reuses every cached feature
    from emotionlib.model import build_classifier
    from emotionlib.encoders import resolve_encoder

    start = build_classifier(resolve_encoder("tiny-xlmr"), meta["labels"]).encoder.state_dict()
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in start.items())
    again = train(load_config("smoke", base | {"run_id": "frozen-s2", "seed": 7}))
    assert read_json(again / "provenance.json")["feature_seconds"] < 5
    assert sorted((tmp_path / "cache" / "features").glob("*/*.safetensors")) == shards
    with pytest.raises(Exception, match="head=linear"):
        load_config("smoke", base | {"head": "auto"})


@pytest.mark.slow
def test_runs_of_two_precisions_in_one_process(tmp_path):
    """Accelerate keeps one state per process: a bf16 run after an fp32 one (a notebook kernel) must work."""
    from emotionlib.model import load_model
    from emotionlib.train import train

    base = {"runs_dir": str(tmp_path), "epochs": 1, "max_train_rows": 32}
    train(load_config("smoke", base | {"run_id": "fp32"}))
    run = train(load_config("smoke", base | {"run_id": "bf16", "mixed_precision": "bf16"}))
    assert load_model(run / "model")[2]["mixed_precision"] == "bf16"
    assert read_json(run / "provenance.json")["mixed_precision"] == "bf16"


@pytest.mark.parametrize(
    "mode",
    [
        {"freeze_layers": -1, "head_per_language": "head", "epochs": 3, "learning_rate": 1e-2},
        {"freeze_layers": 0, "head_per_language": "bias", "language_temperature": 3.0},
    ],
)
@pytest.mark.heavy
@pytest.mark.slow
def test_parts_per_language_train_jointly_and_predict_with_the_texts_language(tmp_path, monkeypatch, mode):
    import emotionlib
    from emotionlib.combine.weights import EnsembleError
    from emotionlib.evaluate import evaluate
    from emotionlib.metrics import language_scores
    from emotionlib.model import load_model
    from emotionlib.predict import predict_proba
    from emotionlib.runs import RunLayout
    from emotionlib.combine.ensemble import fit_ensemble
    from emotionlib.split import training_parts
    from emotionlib.train import train

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    cfg = load_config(
        "smoke", {"runs_dir": str(tmp_path), "run_id": "per-lang", "languages": ["arq", "sun"], "patience": 0} | mode
    )
    run = train(cfg)
    model, tok, meta = load_model(run / "model")
    assert meta["head_per_language"] == mode["head_per_language"] and model.languages == ["arq", "sun"]
    assert model.language_bias.abs().sum() > 0  # trained, not left at zero
    shares = read_json(run / "provenance.json")["language_rows_per_epoch"]
    assert sum(shares.values()) == read_json(run / "provenance.json")["n_train"]
    # the saved classifier, given each row's language, reproduces the validation figure training recorded
    _, val = training_parts(cfg, RunLayout(run))
    ex = DS.Examples.from_splits(val, meta["labels"])
    probs = predict_proba(model, tok, ex.texts, meta["max_length"], langs=ex.langs)
    f1 = language_scores(ex.y, (probs >= 0.5).astype(int), ex.mask, ex.langs, ex.labels)["mean_macro_f1"]
    assert f1 == pytest.approx(read_json(run / "train_summary.json")["best_val_macro_f1"], abs=1e-6)
    if mode["head_per_language"] == "head":  # evaluating is the same for both parts (6 sets of figures): once
        evaluate(run)
        assert (RunLayout(run).set_metrics("dev", "sun")).is_file()
    clf = emotionlib.load(run)
    with pytest.raises(ValueError, match="parts per language"):
        clf.predict(val[1].texts[:3])
    sun = clf.predict_proba(val[1].texts[:3], lang="sun")
    assert np.allclose(sun, predict_proba(model, tok, val[1].texts[:3], langs=["sun"] * 3), atol=1e-6)
    assert np.allclose(
        clf.predict_proba(val[1].texts[:3], lang="eng"),  # another language: the shared head
        predict_proba(model, tok, val[1].texts[:3]),
        atol=1e-6,
    )
    assert not np.allclose(sun, clf.predict_proba(val[1].texts[:3], lang="arq"))
    with pytest.raises(ValueError, match="parts per language"):
        emotionlib.load(run, backend="onnx")
    with pytest.raises(EnsembleError, match="parts per language"):
        fit_ensemble([run], tmp_path / "ens")


def test_config_refuses_parts_per_language_it_cannot_train():
    from emotionlib.config import ConfigError

    with pytest.raises(ConfigError, match="several BRIGHTER training languages"):
        load_config("smoke", {"head_per_language": "bias"})  # English alone
    with pytest.raises(ConfigError, match="head=linear"):
        load_config("smoke", {"head_per_language": "head", "languages": ["arq", "sun"], "head": "auto"})
    with pytest.raises(ConfigError, match="must be one of"):
        load_config("smoke", {"head_per_language": "true", "languages": "all"})
    assert load_config("smoke", {"head_per_language": "head", "languages": "all"}).head_per_language == "head"


def test_language_temperature_sampling_evens_out_languages_and_replays_by_epoch():
    from emotionlib.config import ConfigError
    from emotionlib.sampling import EpochSampler, language_shares

    langs = ["big"] * 900 + ["mid"] * 90 + ["tiny"] * 10
    assert language_shares(langs, 1.0) == {"big": 900, "mid": 90, "tiny": 10}
    shares = language_shares(langs, 3.0)
    assert sum(shares.values()) == 1000 and shares["big"] < 900 and shares["tiny"] > 10
    q = np.array([900, 90, 10]) ** (1 / 3)
    assert np.allclose([shares[k] for k in ("big", "mid", "tiny")], q / q.sum() * 1000, atol=1)
    sampler = EpochSampler([5] * 1000, 16, seed=42, langs=langs, temperature=3.0)
    rows = list(sampler)
    assert len(rows) == 1000 == len(sampler)
    drawn = {k: [i for i in rows if langs[i] == k] for k in shares}
    assert {k: len(v) for k, v in drawn.items()} == shares
    assert len(set(drawn["big"])) == shares["big"]  # a large language is drawn in part, no row twice
    assert set(drawn["tiny"]) == set(range(990, 1000))  # a small one: every row, then again
    assert list(sampler) == rows  # the same epoch replays identically (resume)
    sampler.set_epoch(1)
    assert list(sampler) != rows
    grouped = EpochSampler(list(range(1000)), 16, seed=42, group_by_length=True, langs=langs, temperature=3.0)
    assert sorted(grouped) == sorted(rows)  # grouping reorders the same draw
    # temperature 1 is the plain shuffle, so runs made before sampling existed replay unchanged
    assert list(EpochSampler([5] * 1000, 16, 42, langs=langs)) == list(EpochSampler([5] * 1000, 16, 42))
    with pytest.raises(ConfigError, match="several BRIGHTER training languages"):
        load_config("smoke", {"language_temperature": 3})
    with pytest.raises(ConfigError, match=">= 1"):
        load_config("smoke", {"language_temperature": 0.5, "languages": "all"})


def test_layer_wise_learning_rates_and_the_cosine_schedule():
    from emotionlib.model import build_classifier
    from emotionlib.encoders import resolve_encoder
    from emotionlib.optim import optimizer as _optimizer, scheduler as _scheduler

    model = build_classifier(resolve_encoder("tiny-xlmr"), ["a", "b"])  # 2 layers
    cfg = load_config("smoke", {"layer_lr_decay": 0.5, "learning_rate": 1e-3, "lr_schedule": "cosine"})
    opt = _optimizer(model, cfg)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["head.weight"])] == 1e-3
    assert lr_of[id(named["encoder.encoder.layer.1.attention.self.query.weight"])] == 5e-4
    assert lr_of[id(named["encoder.encoder.layer.0.output.dense.weight"])] == 2.5e-4
    assert lr_of[id(named["encoder.embeddings.word_embeddings.weight"])] == 1.25e-4
    assert wd_of[id(named["head.bias"])] == 0.0 and wd_of[id(named["head.weight"])] == cfg.weight_decay
    sched = _scheduler(opt, cfg, 100)
    for _ in range(50):
        opt.step()
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(opt.param_groups[0]["initial_lr"] * 0.5, rel=1e-6)  # cosine midpoint
    plain = _optimizer(model, load_config("smoke"))  # no decay: the two groups of before (decayed or not)
    assert [g["weight_decay"] for g in plain.param_groups] == [0.01, 0.0]
    with pytest.raises(Exception, match="layer_lr_decay"):
        load_config("smoke", {"layer_lr_decay": 0})


def interrupt_in_epoch_two(T, monkeypatch):
    """Make train.train raise KeyboardInterrupt as its second epoch starts; returns the real epoch function."""
    real, calls = T._train_epoch, []

    def stop_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "_train_epoch", stop_in_epoch_two)
    return real


@pytest.mark.slow
def test_the_weights_moving_average_is_validated_kept_and_resumed(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from emotionlib import train as T

    base = {"runs_dir": str(tmp_path), "epochs": 2, "patience": 0, "ema_decay": 0.9}
    full = T.train(load_config("smoke", base | {"run_id": "ema"}))
    plain = T.train(load_config("smoke", base | {"run_id": "plain", "ema_decay": 0.0}))
    a, p = log_of(full), log_of(plain)
    assert a[0]["train_loss"] == pytest.approx(p[0]["train_loss"], abs=1e-9)  # the same training steps ...
    assert a[0]["val_loss"] != pytest.approx(p[0]["val_loss"], abs=1e-6)  # ... validated through the average
    w_ema, w_plain = load_file(full / "model" / "model.safetensors"), load_file(plain / "model" / "model.safetensors")
    assert not all(torch.equal(w_ema[k], w_plain[k]) for k in w_ema)
    real = interrupt_in_epoch_two(T, monkeypatch)
    cfg = load_config("smoke", base | {"run_id": "ema-resumed"})
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg)
    monkeypatch.setattr(T, "_train_epoch", real)
    resumed = T.train(cfg, resume=True)
    b = log_of(resumed)
    assert [e["epoch"] for e in b] == [1, 2] and len(a) == len(b)
    for x, y in zip(a, b):
        assert x["val_loss"] == pytest.approx(y["val_loss"], abs=1e-9) and x["val_macro_f1"] == y["val_macro_f1"]


@pytest.mark.heavy
@pytest.mark.slow
def test_torch_compile_compiles_the_layers_resumes_and_leaves_the_next_run_eager(tmp_path, monkeypatch):
    """Compiled regions share the classifier's weights: the checkpoint has plain names (a killed compiled run
    resumes) and the saved model loads; a later run in the same process is not compiled."""
    from accelerate.state import AcceleratorState
    from accelerate.utils import DynamoBackend

    from emotionlib import train as T
    from emotionlib.model import load_model

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    real = interrupt_in_epoch_two(T, monkeypatch)
    base = {"runs_dir": str(tmp_path), "epochs": 2, "patience": 0, "max_train_rows": 48}
    cfg = load_config("smoke", base | {"run_id": "compiled", "torch_compile": True})
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    monkeypatch.setattr(T, "_train_epoch", real)
    run = T.train(cfg, resume=True)
    assert [e["epoch"] for e in log_of(run)] == [1, 2]
    assert not any("_orig_mod" in k for k in load_model(run / "model")[0].state_dict())
    T.train(load_config("smoke", base | {"run_id": "eager", "epochs": 1}))
    assert AcceleratorState().dynamo_plugin.backend == DynamoBackend.NO
