"""Build the config's imgaug pipeline and apply it to training batches, reproducibly.

Every batch gets its own copy of the pipeline, seeded from (seed, epoch, batch index), so the
augmented images depend on nothing else: not on which worker thread runs the batch, not on how many
batches ran before in this process (a resumed run sees exactly the batches of an uninterrupted one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dilbench.augment.ops import OPS, Op

if TYPE_CHECKING:
    from dilbench.augment.config import AugmentationConfig

_STREAM = 0x617567  # "aug": keeps these seeds apart from the epoch order's default_rng([seed, epoch])


class _Builder:
    """The BuildContext the op builders see (dilbench.augment.ops)."""

    def __init__(self, iaa: Any, channels: int):
        self.iaa = iaa
        self.channels = channels

    def children(self, ops: tuple[Op, ...]) -> list[Any]:
        return [OPS[op.name].build(op, self) for op in ops]


def build_augmenter(config: AugmentationConfig, channels: int) -> Any:
    """The imgaug augmenter of `config.ops` (a top-level sequence) for images with `channels` channels."""
    from dilbench.augment.compat import import_imgaug

    builder = _Builder(import_imgaug(), channels)
    return builder.iaa.Sequential(builder.children(config.ops), random_order=config.random_order)


def apply(augmenter: Any, images: np.ndarray, entropy: int) -> np.ndarray:
    """`images` (uint8 NHWC) through a fresh copy of `augmenter` seeded with `entropy` (thread-safe)."""
    seeded = augmenter.deepcopy()
    seeded.seed_(entropy)
    return seeded(images=images)


def originals_per_batch(mode: str, batch_size: int) -> int:
    """Training images taken from the epoch order per batch: half of it in paired mode."""
    return batch_size // 2 if mode == "paired" else batch_size


class BatchAugmenter:
    """Turns a batch of originals into the batch the training step sees, per `config.mode`:

    - replace: every image goes through the pipeline; labels unchanged;
    - paired: the originals, unchanged, plus their augmented copies, shuffled together (twice the images).
    """

    def __init__(self, config: AugmentationConfig, channels: int, seed: int):
        if config.mode == "none":
            raise ValueError("augmentation.mode is 'none'; there is nothing to apply")
        self.mode = config.mode
        self.seed = seed
        self.pipeline = build_augmenter(config, channels)

    def __call__(self, images: np.ndarray, labels: np.ndarray, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, step, _STREAM])
        augmented = apply(self.pipeline, images, int(rng.integers(2**32)))
        if self.mode == "replace":
            return augmented, labels
        order = rng.permutation(2 * len(images))
        return np.concatenate([images, augmented])[order], np.concatenate([labels, labels])[order]
