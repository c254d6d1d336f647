"""The embedded benchmark: a generated image world with a taxonomy domain -> clade -> order -> class.

A task is "classify the classes of one order", like the CUB+iNat meta-task of Task2Vec. Domains differ in image
statistics (``organic``: smooth warm backgrounds, soft blobs, low-frequency textures; ``geometric``: grey-blue
striped backgrounds, hard-edged polygons, high-frequency textures, pixel noise). A clade fixes a vocabulary (texture
family, body and part shapes, palette) and which cues tell its classes apart; an order is a prototype drawn around
its clade; a class is a variation of its order's prototype along the clade's cues, and every image adds nuisance
(position, scale, rotation, colour and background jitter, clutter, noise). Task difficulty (class separation,
nuisance strength) is spread evenly over the tasks.

Task sizes are log-uniform (heavy-tailed) and dealt within clades: the size ranks are cut into tiers of one rank
per clade and every clade takes one rank of each tier, so each clade has small orders and one large one, as the
taxa of iNaturalist do (the papers' expert banks hold a few large tasks among many small ones). A task's relatives
are then useful only through what its clade's larger orders teach an expert.

The source task, the ImageNet analogue for pretraining the probe, is broad and coarse: each of its classes is a
whole clade of its own (never a task's clade), dealt round-robin over the domains, and every source image draws an
order and a class of that clade afresh. The probe thus learns the domains' vocabulary (textures, shapes, palettes,
backgrounds) and not the fine cues that tell the classes of one clade apart, as ImageNet's basic-level classes
do not teach the species distinctions of CUB and iNat: those are what an expert trained on a relative adds.

Every random stream is keyed by stable ids (seed, kind, domain, clade, order, class, split), so a task does not
depend on ``data.tasks``; a class's training images are a prefix of those made with a larger ``train_per_class``
and its test images do not depend on the training size. Sizes and difficulties are dealt out over the orders of the
world, so they (only they) change when the number of domains, clades or orders changes.
"""

from __future__ import annotations

import numpy as np

from .. import SOURCE_TASK, CommonKeys, TaskData, TaskSpec, register_source
from .appearance import CUE_PAIRS, GROUPS, MAX_CLADES, MINOR_CUE_WEIGHT, ORDER_SPREAD, PARAMS, SEPARATION
from .render import CHUNK, INTRA, N_NORMAL, N_UNIFORM, render_images
from .settings import OVERRIDE_KEYS, SyntheticSettings
from .world import ARCHETYPES, SOURCE_CLADE_BASE, domain_name, order_name, plan_world

__all__ = [
    "ARCHETYPES", "CHUNK", "CUE_PAIRS", "GENERATOR_VERSION", "GROUPS", "INTRA", "MAX_CLADES", "MINOR_CUE_WEIGHT",
    "N_NORMAL", "N_UNIFORM", "ORDER_SPREAD", "OVERRIDE_KEYS", "PARAMS", "SEPARATION", "SOURCE_CLADE_BASE",
    "SyntheticSettings", "SyntheticSource", "domain_name", "order_name",
]

GENERATOR_VERSION = "2"


@register_source("synthetic")
class SyntheticSource:
    """Generated benchmark world; no files, deterministic from (data.seed, data.synthetic, data.resolution)."""

    name = "synthetic"

    def plan(self, data_cfg: dict) -> list[TaskSpec]:
        """The source task, then every order's task by name."""
        groups = plan_world(SyntheticSettings.from_config(data_cfg.get(self.name)), CommonKeys.of(data_cfg).seed)
        tasks = sorted((g.spec for name, g in groups.items() if name != SOURCE_TASK), key=lambda spec: spec.name)
        return [groups[SOURCE_TASK].spec] + tasks

    def build(self, data_cfg: dict, spec: TaskSpec) -> TaskData:
        """Render one planned task: every class's training images, then every class's test images."""
        common = CommonKeys.of(data_cfg)
        group = plan_world(SyntheticSettings.from_config(data_cfg.get(self.name)), common.seed)[spec.name]
        images, labels, is_train = [], [], []
        for split, per_class in ((0, group.train_per_class), (1, group.test_per_class)):
            for label, ref in enumerate(group.members):
                images.append(render_images(common.seed, ref, split, per_class, common.resolution))
                labels.append(np.full(per_class, label, dtype=np.int64))
                is_train.append(np.full(per_class, split == 0))
        attrs = {
            "generator_version": GENERATOR_VERSION,
            "difficulty": float(group.difficulty),
            "train_per_class": group.train_per_class,
            "test_per_class": group.test_per_class,
        }
        return TaskData(
            np.concatenate(images), np.concatenate(labels), np.concatenate(is_train), list(spec.classes), attrs
        )
