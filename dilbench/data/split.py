"""Seeded, class-balanced subsets and validation hold-outs.

Selection deals the classes round-robin from a seeded shuffle, so even a 100-image subset holds
(nearly) ten images of each class, and the same seed always picks the same images. Picked images
keep their source order; the trainer shuffles.
"""

import numpy as np

from dilbench.data.errors import DataError


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of range(len(labels)) whose every prefix is as class-balanced as possible."""
    shuffled = rng.permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        positions = np.flatnonzero(labels[shuffled] == cls)
        rank[positions] = np.arange(len(positions))  # k-th image of its class in shuffled order
    return shuffled[np.argsort(rank, kind="stable")]


def subset(x: np.ndarray, y: np.ndarray, size: int | None, rng: np.random.Generator, what: str) -> tuple[np.ndarray, np.ndarray]:
    """`size` images chosen by balanced_order (all of them, untouched, when size is None)."""
    if size is None:
        return x, y
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 0 < size <= len(y):
        raise DataError(
            f"{what}_subset={size!r} is not a count between 1 and the {len(y)} {what} images; "
            f"use at most {len(y)} or leave it unset"
        )
    chosen = np.sort(balanced_order(y, rng)[:size])
    return x[chosen], y[chosen]


def hold_out(
    x: np.ndarray, y: np.ndarray, validation: float | int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split (x, y) into train and validation parts: (x_train, y_train, x_val, y_val)."""
    count = validation_count(validation, len(y))
    order = balanced_order(y, rng)
    val, train = np.sort(order[:count]), np.sort(order[count:])
    return x[train], y[train], x[val], y[val]


def validation_count(validation: float | int, available: int) -> int:
    """How many of `available` training images `validation` asks for: below 1 a fraction, else a count.

    A whole float such as 5000.0 counts as 5000 images (typed configs may hold counts as floats).
    """
    hint = f"use a fraction in (0, 1) or a whole count below the {available} training images"
    numeric = isinstance(validation, int | float | np.integer | np.floating) and not isinstance(validation, bool)
    if not numeric or not np.isfinite(validation):
        raise DataError(f"validation={validation!r} is neither a fraction nor a count; {hint}")
    if 0 < validation < 1:
        count = round(validation * available)
        if count == 0:
            raise DataError(f"validation={validation} of {available} training images is 0 images; {hint}")
    elif validation == int(validation):
        count = int(validation)
    else:
        raise DataError(f"validation={validation} is neither a fraction below 1 nor a whole count; {hint}")
    if not 0 <= count < available:
        raise DataError(f"validation={validation!r} asks for {count} of {available} training images; {hint}")
    return count
