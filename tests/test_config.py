import dataclasses
from pathlib import Path

import pytest

from emotionlib.config import FIELDS, Config, ConfigError, from_parameters, load_config, parse_overrides


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_profiles_load(profile):
    cfg = load_config(profile)
    assert cfg.profile == profile and cfg.run_id.startswith(profile)


def test_paper_profile_is_the_seed_recipe():
    cfg = load_config("paper")
    assert (cfg.model, cfg.learning_rate, cfg.weight_decay, cfg.batch_size, cfg.max_length, cfg.val_fraction) == (
        "xlm-roberta-base",
        2e-5,
        0.01,
        16,
        128,
        0.2,
    )
    assert 3 <= cfg.epochs <= 5 and cfg.patience > 0


def test_overrides_are_coerced_and_validated():
    cfg = load_config(
        "smoke",
        parse_overrides(["epochs=4", "loss=focal", "languages=eng,deu", "pos_weight=true", "learning_rate=3e-5"]),
    )
    assert cfg.epochs == 4 and cfg.loss == "focal" and cfg.languages == ("eng", "deu") and cfg.pos_weight
    assert cfg.learning_rate == 3e-5


@pytest.mark.parametrize(
    "override,field",
    [
        ({"loss": "hinge"}, "loss"),
        ({"epochs": "0"}, "epochs"),
        ({"val_fraction": "1.5"}, "val_fraction"),
        ({"epochs": "two"}, "epochs"),
        ({"nonsense": "1"}, "nonsense"),
        ({"run_id": "a/b"}, "run_id"),
    ],
)
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field):
        load_config("smoke", override)


def test_frozen_and_unknown_profile():
    cfg = load_config("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="known profiles"):
        load_config("nope")
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])


def test_notebook_parameters_are_a_profile_and_overrides():
    assert all(f.metadata.get("help") for f in dataclasses.fields(Config))  # every field documents itself
    cfg = from_parameters({"profile": "smoke", "run_id": "x", "runs_dir": None, "overrides": {"epochs": 2}})
    assert cfg.epochs == 2 and cfg.model == "tiny-xlmr" and cfg.run_id == "x" and cfg.profile == "smoke"
    whole = load_config("quick", {"run_id": "y", "epochs": 4})
    again = from_parameters({"profile": "quick", "run_id": "y", "runs_dir": "runs", "overrides": whole.to_dict()})
    assert again == whole
    with pytest.raises(ConfigError, match="unknown config field.*colour"):
        from_parameters({"profile": "smoke", "overrides": {"colour": "red"}})


def test_every_field_has_a_group_and_the_shared_lists_are_unions_of_groups():
    from emotionlib import config as C
    from emotionlib.graph import TEACHER_SHARED

    assert all(f.metadata.get("group") in C.GROUPS for f in dataclasses.fields(Config))
    assert set(C.fields_of(*C.GROUPS)) == set(FIELDS)
    assert C.STACK_FIELDS == C.fields_of(C.STACK) and "feature_precision" in C.STACK_FIELDS
    assert set(C.LOCATION_FIELDS) == {"profile", "run_id", "runs_dir", "data_dir", "num_threads"}
    assert {"languages", "split_seed", "cv_fold", "stack", "teacher"} <= set(C.MEMBER_FIXED)
    assert not {"seed", "learning_rate", "model", "num_threads"} & set(C.MEMBER_FIXED)
    assert "seed" in TEACHER_SHARED and not {"run_id", "stack", "model"} & set(TEACHER_SHARED)
    with pytest.raises(ValueError, match="unknown config group"):
        C._f("colour", 0, "a field of no known group")


def test_a_test_not_marked_slow_cannot_train():
    """The guard behind `make test-fast trains nothing` (conftest): in an unmarked test, training refuses."""
    import emotionlib.train

    with pytest.raises(AssertionError, match="mark it @pytest.mark.slow"):
        emotionlib.train._train(None, None, None, None, "no", False, 0.0)


def test_an_encoder_brings_its_own_settings_onto_a_profile_made_for_another():
    from emotionlib.cli import _config, build_parser

    def cfg(*sets, profile="quick"):  # what `make report MODEL=...` and `--set model=...` both pass through
        return _config(build_parser().parse_args(["train", "--config", profile, "--set", *sets]))

    quick, me5 = cfg(), cfg("model=me5-small")
    assert (me5.learning_rate, me5.pooling, me5.freeze_layers, me5.mixed_precision) == (5e-5, "mean", 6, "auto")
    assert (quick.learning_rate, quick.pooling) != (me5.learning_rate, me5.pooling)
    assert cfg("model=me5-small", "learning_rate=1e-4").learning_rate == 1e-4  # yours win
    ml = cfg(profile="multilingual")
    assert cfg("model=me5-small", profile="multilingual").freeze_layers == ml.freeze_layers  # its own profile
    assert cfg("model=xlm-roberta-base").learning_rate == quick.learning_rate  # no defaults


def test_every_registered_encoder_declares_itself():
    from emotionlib.encoders import REGISTRY

    assert {"minilm", "mpnet", "me5-small", "embeddinggemma", "tiny-xlmr", "tiny-gemma"} <= set(REGISTRY)
    for name, enc in REGISTRY.items():
        assert enc.name == name and enc.description and callable(enc.find) and isinstance(enc.provenance(), dict)


@pytest.mark.parametrize(
    "path",
    sorted(
        p for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml") if not p.name.startswith("sweep")
    ),
    ids=lambda p: p.stem,
)
def test_every_shipped_profile_validates(path):
    cfg = load_config(path.stem)
    assert cfg.profile == path.stem


def test_best_stack_large_stacks_best_with_every_layer_trained():
    """Its fold networks are the `best` profile's network with every layer trained (the k-fold estimate
    `kfold --config best --set freeze_layers=0` measured), stacked with EmbeddingGemma's features and TF-IDF."""
    from emotionlib.graph import network_config

    large = load_config("best-stack-large", {"run_id": "x"})
    best = load_config("best", {"run_id": "x", "freeze_layers": 0})
    assert network_config(large).to_dict() | {"profile": ""} == best.to_dict() | {"profile": ""}
    assert (large.stack_network_folds, large.feature_model, large.stack) == (
        3,
        "embeddinggemma",
        ("network", "features_lr", "tfidf_lr"),
    )


def test_the_field_table_in_the_docs_is_generated_from_the_fields():
    from pathlib import Path

    from emotionlib.config import field_table

    text = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text(encoding="utf-8")
    start = text.index("<!-- fields: python -m emotionlib profiles --markdown -->\n")
    table = text[text.index("\n", start) + 1 : text.index("<!-- end of fields -->")]
    assert table == field_table(), "regenerate it: python -m emotionlib profiles --markdown"
