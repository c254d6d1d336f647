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
