"""``data.synthetic`` as typed settings: the schema types and fills the section, the checks here add its ranges."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Settings
from ...errors import ConfigError

OVERRIDE_KEYS = ("n_classes", "train_per_class", "test_per_class", "difficulty")


def _check_range(key: str, value: tuple, minimum: int | None = None, why: str = "") -> None:
    """A [min, max] pair: min at least ``minimum`` (when given) and not above max."""
    if minimum is not None and value[0] < minimum:
        raise ConfigError(f"{key}: min must be >= {minimum}{why}, got {list(value)!r}")
    if value[0] > value[1]:
        raise ConfigError(f"{key}: min > max in {list(value)!r}")


@dataclass(frozen=True)
class SyntheticSettings(Settings):
    """The world's shape and sizes (see the schema's ``data.synthetic``); ``overrides`` maps a task to the keys of
    :data:`OVERRIDE_KEYS` it pins, checked against the planned tasks when the world is planned."""

    SECTION = "data.synthetic"

    domains: int
    clades_per_domain: int
    orders_per_clade: int
    classes_per_order: tuple[int, int]
    train_per_class: tuple[int, int]
    test_per_class: int
    source_classes: int
    source_train_per_class: int
    source_test_per_class: int
    difficulty: tuple[float, float]
    overrides: dict

    def __post_init__(self) -> None:
        """The checks beyond the schema: ranges that would leave a task empty, and enough source classes."""
        key = self.SECTION
        _check_range(f"{key}.difficulty", self.difficulty)
        if self.source_classes < self.domains:
            raise ConfigError(
                f"{key}.source_classes: {self.source_classes} is fewer than the {self.domains} domains: the probe "
                "would never see a domain's images (the source classes are dealt round-robin over the domains)"
            )
        _check_range(f"{key}.classes_per_order", self.classes_per_order, 2, " (a task needs >= 2 classes)")
        _check_range(f"{key}.train_per_class", self.train_per_class, 1, " (0 would leave tasks empty)")
        if self.test_per_class < 1:
            raise ConfigError(
                f"{key}.test_per_class: must be an integer >= 1 (0 would leave every task without a test set), "
                f"got {self.test_per_class!r}"
            )
