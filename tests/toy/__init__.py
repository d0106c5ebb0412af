"""Toy registry entries, one file each, registered through the public API (dilbench.plugins) as a plugin
would: `register()` registers all four (tests/test_registry.py uses it with `registered(toy.register)`)."""

from toy import augment, data, model, schedule


def register() -> None:
    for part in (model, data, schedule, augment):
        part.register()
