"""Config validation: defaults, messages naming the key, and agreement between the schema and the code."""

from pathlib import Path

import pytest
import yaml

from taskspace.config import load_schema, validate_config
from taskspace.data import synthetic
from taskspace.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_is_valid_and_every_schema_key_has_a_description_and_default():
    validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    schema = load_schema()

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}{key} has no description"
            assert "default" in sub, f"{path}{key} has no default"
            walk(sub, f"{path}{key}.")

    walk(schema, "")
    walk(schema["$defs"]["training"], "<training>.")


def test_defaults_are_filled_in():
    cfg = validate_config({})
    assert cfg["probe"]["arch"] == "resnet18"
    assert cfg["experts"]["train"]["augment"]["crop_padding"] == 2
    assert cfg["data"]["tasks"] == "all"


def test_schema_defaults_of_the_synthetic_world_match_the_generator():
    assert validate_config({})["data"]["synthetic"] == synthetic.DEFAULTS


@pytest.mark.parametrize(
    "config,message",
    [
        ({"probe": {"train": {"lerning_rate": 1}}}, "probe.train.lerning_rate: unknown key"),
        ({"experts": {"train": {"epochs": "ten"}}}, "experts.train.epochs: 'ten' is not of type 'integer'"),
        ({"data": {"resolution": 0}}, "data.resolution: 0 is less than the minimum of 8"),
        ({"sed": 1}, "did you mean 'seed'"),
        ({"probe": {"arch": "vgg"}}, "probe.arch"),
    ],
)
def test_errors_name_the_key(config, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        validate_config(config)


def _methods(embeddings: dict) -> dict:
    from taskspace.config import method_configs

    return method_configs(validate_config({"embeddings": embeddings}))


def test_method_variants_inherit_their_method_and_override_it():
    out = _methods({"methods": ["task2vec", "task2vec_random", "t2v_skip"], "task2vec": {"beta": 0.5},
                    "variants": {"t2v_skip": {"method": "task2vec", "skip_layers": 3},
                                 "task2vec_random": {"method": "task2vec", "probe": "random"}}})
    assert out["task2vec"] == ("task2vec", validate_config({"embeddings": {"task2vec": {"beta": 0.5}}})
                               ["embeddings"]["task2vec"])
    base, cfg = out["t2v_skip"]
    assert base == "task2vec" and cfg["skip_layers"] == 3 and cfg["beta"] == 0.5 and cfg["probe"] == "pretrained"
    assert out["task2vec_random"][1]["probe"] == "random"


@pytest.mark.parametrize(
    "embeddings,message",
    [
        ({"methods": ["task2vek"]}, "embeddings.methods: unknown embedding method 'task2vek' (did you mean 'task2vec'?)"),
        ({"methods": ["x"], "variants": {"x": {"method": "nope"}}}, "embeddings.variants.x.method"),
        ({"methods": ["x"], "variants": {"x": {"method": "task2vec", "skip_layerz": 1}}},
         "embeddings.variants.x.skip_layerz: unknown key 'skip_layerz' (did you mean 'skip_layers'?)"),
        ({"methods": ["x"], "variants": {"x": {"method": "pseudotask", "epochs": -1}}}, "embeddings.variants.x.epochs"),
        ({"methods": ["task2vec"], "variants": {"task2vec": {"method": "task2vec"}}}, "embeddings.variants.task2vec"),
        ({"methods": ["model2vec", "domain"], "model2vec": {"base": "domain"}}, "embeddings.model2vec.base"),
        ({"methods": ["model2vec"]}, "embeddings.model2vec.base"),
    ],
)
def test_method_errors_name_the_key(embeddings, message):
    with pytest.raises(ConfigError) as err:
        _methods(embeddings)
    assert message in str(err.value)
