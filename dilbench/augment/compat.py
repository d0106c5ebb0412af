"""Import imgaug 0.4.0 under NumPy 2, without changing NumPy for anyone else.

imgaug 0.4.0 (the last release) reads `np.sctypes` once, at import, to build its dtype tables;
NumPy 2.0 removed that attribute. We lend NumPy 1's value for the duration of the import and take it
back afterwards, so no other code can come to depend on it. `np.bool` (used by a few augmenters)
exists again in NumPy 2. What still breaks at run time (tests/test_augment.py runs every exposed op):
- `np.complex`, used by `iap.Power` and the frequency-noise blends: not exposed;
- `ElasticTransformation` with OpenCV 5 (cv2.remap rejects its float64 maps): not exposed;
- `Affine(fit_output=True)` returns differently sized images: not exposed (batches need one shape).
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

import numpy as np

_SCTYPES = {
    "int": [np.int8, np.int16, np.int32, np.int64],
    "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
    "float": [np.float16, np.float32, np.float64, np.longdouble],
    "complex": [np.complex64, np.complex128, np.clongdouble],
    "others": [bool, object, bytes, str, np.void],
}
_lock = threading.Lock()


def import_imgaug() -> ModuleType:
    """`imgaug.augmenters`, imported on first use (it takes about a second)."""
    with _lock:
        lend = "sctypes" not in np.__dict__
        if lend:
            setattr(np, "sctypes", _SCTYPES)  # noqa: B010 - NumPy 2 has no sctypes attribute to type-check
        try:
            return importlib.import_module("imgaug.augmenters")
        finally:
            if lend:
                delattr(np, "sctypes")
