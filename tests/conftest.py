"""The suite sees dilbench's own registries only: plugins installed in a developer's environment (entry
points of `dilbench.plugins`) are not loaded, so they cannot change its results or the committed JSON
Schema. Child processes inherit this; the plugin tests (test_plugins.py) turn discovery back on."""

import os

os.environ["DILBENCH_NO_PLUGINS"] = "1"
