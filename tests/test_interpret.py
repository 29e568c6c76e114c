import numpy as np
import pytest

from emotionlib.config import CASE_STUDY
from emotionlib.interpret import attentions, explain_lime, layer_head_summary, merge_words, rank_of, rollout
from emotionlib.model import load_model

pytestmark = pytest.mark.xdist_group("test_interpret")  # its module-scoped fixture is made on one worker

SPECIAL = {"<s>", "</s>", "<pad>", "[CLS]", "[SEP]", "[PAD]"}
SENTENCE = "I honestly cannot believe how happy and calm I feel after such a long and scary week"


@pytest.fixture(scope="module")
def loaded(smoke_run):
    return load_model(smoke_run / "model", attn_implementation="eager")


def test_lime_gives_exactly_ten_features_per_label(loaded):
    model, tok, meta = loaded
    weights, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, num_features=10, seed=1)
    assert list(weights) == meta["labels"]
    assert all(len(w) == 10 for w in weights.values())


def test_same_seed_same_explanation(loaded):
    model, tok, meta = loaded
    a, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, seed=7)
    b, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, seed=7)
    assert a == b


def test_attention_bars_exclude_special_and_padding_tokens(loaded):
    model, tok, meta = loaded
    att, info = attentions(model, tok, CASE_STUDY)
    assert att.ndim == 4 and att.shape[2] == att.shape[3] == len(info["tokens"])
    words = merge_words(CASE_STUDY, info, att[0, 0, 0])
    assert not SPECIAL & set(words["word"])
    assert list(words["word"]) == ["I", "can't", "believe", "how", "happy", "I", "feel!"]  # pieces merged
    assert np.allclose(att.sum(axis=-1), 1, atol=1e-5)  # real weights came back, not None


def test_rollout_rows_sum_to_one(loaded):
    model, tok, _ = loaded
    att, info = attentions(model, tok, SENTENCE)
    r = rollout(att)
    assert np.allclose(r.sum(axis=-1), 1, atol=1e-6) and (r >= 0).all()
    summary = layer_head_summary(att, info["content"])
    assert summary.shape == att.shape[:2] and ((summary >= 0) & (summary <= 1 + 1e-6)).all()


def test_rank_of_counts_by_signed_weight():
    assert rank_of("happy", [("I", -0.5), ("happy", 0.3), ("feel", 0.1)]) == 1
    assert rank_of("feel", [("I", -0.5), ("happy", 0.3), ("feel", 0.1)]) == 2
    assert rank_of("sad", [("I", 0.1)]) is None


def test_interpret_run_writes_every_view(smoke_run):
    from emotionlib.interpret import interpret_run
    from emotionlib.runs import read_json

    out = interpret_run(smoke_run)
    for name in (
        "lime_case.csv",
        "lime_case_label.png",
        "examples.csv",
        "lime_examples.csv",
        "attention_case.csv",
        "attention_case.png",
        "layer_head.csv",
        "layer_head.png",
        "rollout_case.csv",
        "rollout_case.png",
        "agreement.csv",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    s = read_json(out / "summary.json")
    assert s["lime_seconds_one_explanation"] > 0 and s["agreement_sentences"] >= 1
    assert -1 <= s["mean_rho_lime_attention"] <= 1
    assert (s["case_label"], s["case_word"]) == ("joy", "happy")


@pytest.mark.slow
def test_a_frozen_mean_pooled_bf16_run_is_explained_like_any_other(tmp_path, monkeypatch):
    from emotionlib.config import load_config
    from emotionlib.evaluate import evaluate
    from emotionlib.interpret import interpret_run
    from emotionlib.runs import read_json
    from emotionlib.train import train

    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    run = train(
        load_config(
            "smoke",
            {
                "runs_dir": str(tmp_path),
                "run_id": "mean",
                "pooling": "mean",
                "freeze_layers": -1,
                "mixed_precision": "bf16",
                "lime_num_samples": 50,
                "agreement_sentences": 2,
            },
        )
    )
    evaluate(run)
    out = interpret_run(run)
    s = read_json(out / "summary.json")
    assert (out / "attention_case.png").is_file() and (out / "lime_case.csv").is_file()
    import emotionlib

    expected = emotionlib.load(run).predict_proba([s["case_study"]])[0]
    labels = emotionlib.load(run).labels
    assert s["case_label"] == "joy"
    assert s["case_probabilities"]["joy"] == pytest.approx(float(expected[labels.index("joy")]), abs=1e-3)


def test_an_explanation_of_one_label_is_that_labels(loaded):
    """Explaining a subset of labels explains those labels, not the model's first ones."""
    model, tok, meta = loaded
    every, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, seed=3)
    for lab in meta["labels"][1:3]:
        one, _ = explain_lime(model, tok, SENTENCE, [lab], num_samples=200, seed=3, model_labels=meta["labels"])
        assert one[lab] == every[lab]
    with pytest.raises(ValueError, match="give model_labels"):
        explain_lime(model, tok, SENTENCE, [meta["labels"][1]], num_samples=20, seed=3)


def test_lime_through_the_onnx_graph_gives_the_same_seeded_explanation(loaded, smoke_run):
    from emotionlib.config import load_config
    from emotionlib.interpret import lime_forward
    from emotionlib.runs import RunLayout

    model, tok, meta = loaded
    assert lime_forward(load_config("smoke"), RunLayout(smoke_run), meta) is None  # torch unless asked
    forward = lime_forward(load_config("smoke", {"lime_backend": "onnx"}), RunLayout(smoke_run), meta)
    a, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, seed=5)
    b, _ = explain_lime(model, tok, SENTENCE, meta["labels"], num_samples=200, seed=5, forward=forward)
    for lab in meta["labels"]:
        assert np.allclose([v for _, v in a[lab]], [dict(b[lab]).get(w, 0) for w, _ in a[lab]], atol=1e-3)


def test_lime_scores_each_distinct_perturbation_once_and_explains_as_scoring_them_all(loaded, monkeypatch):
    from lime.lime_text import LimeTextExplainer

    import emotionlib.interpret as I
    from emotionlib.predict import predict_proba

    model, tok, meta = loaded
    seen = []

    def counting(m, t, texts, *args, **kwargs):
        seen.extend(texts)
        return predict_proba(m, t, texts, *args, **kwargs)

    monkeypatch.setattr(I, "predict_proba", counting)
    short = "so happy today"  # 3 words: at most 8 distinct perturbations
    got, _ = explain_lime(model, tok, short, meta["labels"], num_samples=300, seed=11)
    assert len(seen) == len(set(seen)) <= 8 + 1  # the text itself, then LIME's subsets

    def every_one(texts):  # the plain classifier: every perturbation scored, repeats included
        p = predict_proba(model, tok, list(texts), 128, 128)
        return np.stack([1 - p, p], axis=2).reshape(len(texts), -1)

    names = [n for lab in meta["labels"] for n in (f"not {lab}", lab)]
    exp = LimeTextExplainer(class_names=names, split_expression=I.LIME_SPLIT, random_state=11).explain_instance(
        short, every_one, labels=[2 * j + 1 for j in range(len(meta["labels"]))], num_features=10, num_samples=300
    )
    for j, lab in enumerate(meta["labels"]):
        want = exp.as_list(label=2 * j + 1)
        assert [w for w, _ in got[lab]] == [w for w, _ in want]
        assert np.allclose([v for _, v in got[lab]], [v for _, v in want], atol=1e-5)
