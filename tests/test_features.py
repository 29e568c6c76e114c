import numpy as np
import pytest
import torch

pytestmark = pytest.mark.xdist_group("test_features")  # its module-scoped fixture is made on one worker


@pytest.fixture(scope="module")
def tiny():
    from emotionlib.model import build_classifier, load_tokenizer
    from emotionlib.encoders import resolve_encoder

    folder = resolve_encoder("tiny-xlmr")
    torch.manual_seed(0)
    return build_classifier(folder, ["a", "b"], pooling="mean").eval(), load_tokenizer(folder), folder


TEXTS = ["I can't believe how happy I feel!", "Ich habe Angst.", "", "a much longer sentence " * 12, "Ich habe Angst."]


def test_features_are_what_the_head_reads_and_are_cached_by_text(tiny, tmp_path):
    from emotionlib.features import FeatureCache, pooled_features

    model, tok, _ = tiny
    feats = pooled_features(model, tok, TEXTS, 32, batch_size=2, cache_dir=tmp_path, progress=False)
    assert feats.shape == (5, model.head.in_features) and torch.equal(feats[1], feats[4])
    with torch.inference_mode():
        one = tok(TEXTS[3], truncation=True, max_length=32, return_tensors="pt")
        assert torch.allclose(feats[3], model.features(one["input_ids"], one["attention_mask"])[0][0], atol=1e-5)
        logits = model.head(feats)
    from emotionlib.predict import predict_proba

    assert np.allclose(torch.sigmoid(logits).numpy(), predict_proba(model, tok, TEXTS, 32), atol=1e-5)
    assert len(FeatureCache(tmp_path).rows) == 4  # one row per distinct text
    shards = sorted(tmp_path.glob("*.safetensors"))
    again = pooled_features(model, tok, list(reversed(TEXTS)), 32, cache_dir=tmp_path, progress=False)
    assert torch.equal(again, feats.flip(0)) and sorted(tmp_path.glob("*.safetensors")) == shards  # nothing new


def test_the_cache_is_named_by_weights_pooling_length_and_precision(tiny, tmp_path):
    import shutil

    from emotionlib.features import encoder_fingerprint

    _, _, folder = tiny
    key = encoder_fingerprint(folder, "mean", 128, "no")
    assert key == encoder_fingerprint(folder, "mean", 128, "no")
    assert (
        len(
            {
                key,
                encoder_fingerprint(folder, "cls", 128, "no"),
                encoder_fingerprint(folder, "mean", 64, "no"),
                encoder_fingerprint(folder, "mean", 128, "bf16"),
            }
        )
        == 4
    )
    other = shutil.copytree(folder, tmp_path / "enc")
    (other / "config.json").write_text((other / "config.json").read_text())  # config alone does not rename
    assert encoder_fingerprint(other, "mean", 128, "no") == key
    weights = next(other.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b" ")
    assert encoder_fingerprint(other, "mean", 128, "no") != key


def test_bf16_prediction_stays_close_to_fp32(tiny):
    from emotionlib.predict import predict_proba

    model, tok, _ = tiny
    fp32 = predict_proba(model, tok, TEXTS, 32)
    bf16 = predict_proba(model, tok, TEXTS, 32, precision="bf16")
    assert bf16.dtype == np.float32 and np.abs(bf16 - fp32).max() < 0.02


def test_an_interrupted_pass_keeps_its_finished_chunks_and_resumes(tiny, tmp_path, monkeypatch):
    from emotionlib import features as F

    model, tok, folder = tiny
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(23)]
    layered = F.LayerFeatures(folder, [1, -1], 32)
    whole = layered(texts, None, progress=False)
    monkeypatch.setattr(F, "CHUNK", 5)
    real, calls = F.batched_proba, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third chunk
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "batched_proba", failing)
    with pytest.raises(KeyboardInterrupt):
        layered(texts, tmp_path, progress=False)
    assert len(F.FeatureCache(tmp_path / layered.fingerprint).rows) == 10  # two chunks written, nothing half
    monkeypatch.setattr(F, "batched_proba", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = layered(texts, tmp_path, progress=False)
    assert len(calls) == 3 + 3  # the 13 texts left, in chunks of 5
    assert np.allclose(resumed, whole, atol=1e-5)


def test_a_long_pass_states_the_time_it_will_take_after_a_short_first_chunk(tiny, monkeypatch, caplog):
    from emotionlib import features as F

    _, _, folder = tiny
    monkeypatch.setattr(F, "CHUNK", 5)
    monkeypatch.setattr(F, "FIRST_CHUNK", 2)
    texts = [f"text {i} " + "word " * i for i in range(12)]
    with caplog.at_level("INFO", logger="emotionlib"):
        out = F.LayerFeatures(folder, [-1], 32)(texts, None, progress=True)
    lines = [r.getMessage() for r in caplog.records if "texts encoded" in r.getMessage()]
    assert out.shape[0] == 12 and len(lines) == 2  # chunks of 2, 5 and 5: a line after each but the last
    assert lines[0].startswith("features: 2 of 12 texts encoded") and "min left" in lines[0]
