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
    assert (cfg.model, cfg.learning_rate, cfg.weight_decay, cfg.batch_size, cfg.max_length, cfg.val_fraction) == \
        ("xlm-roberta-base", 2e-5, 0.01, 16, 128, 0.2)
    assert 3 <= cfg.epochs <= 5 and cfg.patience > 0


def test_overrides_are_coerced_and_validated():
    cfg = load_config("smoke", parse_overrides(["epochs=4", "loss=focal", "languages=eng,deu", "pos_weight=true",
                                                "learning_rate=3e-5"]))
    assert cfg.epochs == 4 and cfg.loss == "focal" and cfg.languages == ("eng", "deu") and cfg.pos_weight
    assert cfg.learning_rate == 3e-5


@pytest.mark.parametrize("override,field", [({"loss": "hinge"}, "loss"), ({"epochs": "0"}, "epochs"),
                                            ({"val_fraction": "1.5"}, "val_fraction"), ({"epochs": "two"}, "epochs"),
                                            ({"nonsense": "1"}, "nonsense"), ({"run_id": "a/b"}, "run_id")])
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


def test_notebook_parameters_map_one_to_one():
    assert all(f.metadata.get("help") for f in dataclasses.fields(Config))  # every field documents itself
    ns = {name: None for name in FIELDS} | {"profile": "smoke", "run_id": "x", "epochs": 2}
    cfg = from_parameters(ns)
    assert cfg.epochs == 2 and cfg.model == "tiny-xlmr" and cfg.run_id == "x"


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


@pytest.mark.parametrize("path", sorted(p for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml")
                                        if not p.name.startswith("sweep")), ids=lambda p: p.stem)
def test_every_shipped_profile_validates(path):
    cfg = load_config(path.stem)
    assert cfg.profile == path.stem


def test_best_stack_large_stacks_best_with_every_layer_trained():
    """Its fold networks are the `best` profile's network with every layer trained (the k-fold estimate
    `kfold --config best --set freeze_layers=0` measured), stacked with EmbeddingGemma's features and TF-IDF."""
    from emotionlib.config import network_config

    large = load_config("best-stack-large", {"run_id": "x"})
    best = load_config("best", {"run_id": "x", "freeze_layers": 0})
    assert network_config(large).to_dict() | {"profile": ""} == best.to_dict() | {"profile": ""}
    assert (large.stack_network_folds, large.feature_model, large.stack) == (
        3, "embeddinggemma", ("network", "features_lr", "tfidf_lr"))
