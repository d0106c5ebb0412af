"""Image augmentation with imgaug, described in YAML.

`ops` holds the typed operations (config only, no imgaug import), `compat` imports imgaug under
NumPy 2, `pipeline` builds and applies the imgaug augmenter per batch, `preview` draws a grid.
Nothing here imports imgaug or TensorFlow at import time.
"""
