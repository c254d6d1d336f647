"""Config validation: defaults, messages naming the key, and agreement between the schema and the code."""

from pathlib import Path

import pytest
import yaml

from taskspace.config import load_schema
from taskspace.plan import validate_config
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


def _settings_classes():
    import importlib
    import pkgutil

    import taskspace
    from taskspace.config import Settings

    for info in pkgutil.walk_packages(taskspace.__path__, "taskspace."):
        if info.name != "taskspace.__main__":
            importlib.import_module(info.name)
    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted((c for c in found if c.SECTION), key=lambda c: c.SECTION)  # bases sharing fields have no section


def test_every_settings_class_has_exactly_its_schema_sections_keys_and_no_defaults_of_its_own():
    import dataclasses

    from taskspace.config import schema_section

    classes = _settings_classes()
    sections = {c.SECTION for c in classes}
    # every method and data source with a config section has its typed settings
    assert {"data.synthetic", "data.imagefolder", "data.cub200", "data.inat2018", "data.stanford_cars", "probe",
            "experts", "experts.train", "transfer", "embeddings.task2vec", "embeddings.pseudotask",
            "embeddings.ttk", "embeddings.model2vec"} <= sections
    for cls in classes:
        fields = dataclasses.fields(cls)
        assert {f.name for f in fields} == set(schema_section(cls.SECTION)["properties"]), cls
        assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields), cls


def test_settings_take_the_schemas_defaults_and_name_the_key_of_a_bad_value():
    from taskspace.errors import ConfigError
    from taskspace.training import TrainingSettings

    settings = TrainingSettings.from_config({"epochs": 3})
    assert (settings.epochs, settings.min_steps, settings.augment.crop_padding) == (3, 40, 2)
    with pytest.raises(ConfigError, match=r"probe\.train\.augment\.hflip: 'yes' is not of type 'boolean'"):
        TrainingSettings.from_config({"augment": {"hflip": "yes"}}, "probe.train")
    with pytest.raises(ConfigError, match=r"experts\.train\.epoch: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        TrainingSettings.from_config({"epoch": 3})


def test_the_schema_ships_inside_the_package():
    from importlib.resources import files

    assert files("taskspace").joinpath("config.schema.yaml").is_file()
    assert load_schema()["properties"]["seed"]["default"] == 0


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
    from taskspace.plan import method_configs

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
