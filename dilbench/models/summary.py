"""What a model is, without training it: per layer group its output shape, parameters, forward FLOPs
per example and (where the family defines it) receptive field.

Builds the model, so it imports TensorFlow when called (an inspection command may).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dilbench.data.registry import READERS
from dilbench.tables import text_table

FLOPS_CONVENTION = (
    "FLOPs: forward, per example; a multiply-add counts 2 (conv 2*H_out*W_out*k*k*C_in*C_out, dense 2*in*out); "
    "bias, batch norm, activations, pooling and residual additions are not counted"
)


@dataclass(frozen=True)
class SummaryRow:
    name: str
    output_shape: tuple[int, ...]  # without the batch axis
    params: int  # trainable
    state: int  # non-trainable (batch norm moving statistics)
    flops: int
    receptive_field: int | None = None


def _count(variables: list) -> int:
    """Number of values in the float variables (dropout's integer seed state is not a parameter)."""
    return sum(int(v.numpy().size) for v in variables if "float" in str(v.dtype))


def _model(model_or_cfg: Any, input_shape: tuple[int, ...], num_classes: int):
    from dilbench.models import build_model
    from dilbench.models.grouped import GroupedModel

    if isinstance(model_or_cfg, GroupedModel):
        return model_or_cfg
    return build_model(model_or_cfg, tuple(input_shape), num_classes, "float32", 0)


def _flops_and_shapes(model, input_shape: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """(FLOPs, output shape) of every group, then of the head."""
    from dilbench.models.layers import layer_flops

    out, shape = [], tuple(input_shape)
    for layer in [*model.groups, model.head]:
        flops, shape = layer_flops(layer, shape)
        out.append((flops, shape))
    return out


def group_flops(model_or_cfg: Any, input_shape: tuple[int, ...], num_classes: int = 10) -> list[int]:
    """Forward FLOPs per example of each layer group; the head's are added to the last group, which
    it always runs with (as `GroupedModel.group_variables` gives the last group the head's variables).
    So a forward pass from group i costs sum(group_flops(...)[i:])."""
    model = _model(model_or_cfg, input_shape, num_classes)
    flops = [f for f, _ in _flops_and_shapes(model, input_shape)]
    return [*flops[:-2], flops[-2] + flops[-1]]


def summarize(cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> list[SummaryRow]:
    """One row per layer group and one for the head ('head'), for the model config `cfg`."""
    from dilbench.models import MODELS

    model = _model(cfg, input_shape, num_classes)
    receptive_fields = MODELS[cfg.name].receptive_fields
    fields = receptive_fields(cfg) if receptive_fields else [None] * model.num_groups
    rows = []
    for i, (layer, (flops, shape)) in enumerate(zip([*model.groups, model.head], _flops_and_shapes(model, input_shape))):
        rows.append(SummaryRow(
            name=layer.name, output_shape=shape, params=_count(layer.trainable_variables),
            state=_count(layer.non_trainable_variables), flops=flops,
            receptive_field=fields[i] if i < model.num_groups else None,
        ))
    return rows


def format_summary(rows: list[SummaryRow]) -> str:
    """A table with a total line, and the FLOP convention."""
    show_state = any(r.state for r in rows)
    show_field = any(r.receptive_field is not None for r in rows)
    header = ["group", "output shape", "params"] + (["BN stats"] if show_state else []) + ["FLOPs/example"]
    header += ["receptive field"] if show_field else []
    table = []
    for r in rows:
        line = [r.name, "x".join(map(str, r.output_shape)), f"{r.params:,}"] + ([f"{r.state:,}"] if show_state else [])
        line += [f"{r.flops:,}"] + ([str(r.receptive_field or "")] if show_field else [])
        table.append(line)
    total = ["total", "", f"{sum(r.params for r in rows):,}"] + ([f"{sum(r.state for r in rows):,}"] if show_state else [])
    table.append(total + [f"{sum(r.flops for r in rows):,}"] + ([""] if show_field else []))
    text = [text_table(table, header, [c >= 2 for c in range(len(header))])]
    notes = [FLOPS_CONVENTION + "."]
    if show_state:
        notes.append("params: trainable; BN stats: batch norm moving mean and variance (not trained, saved with the model).")
    if show_field:
        notes.append("receptive field: pixels per side seen by one output unit after that group.")
    return "\n".join(text + [""] + notes)


def input_spec(dataset: str, input_shape: tuple[int, ...] | None, num_classes: int | None) -> tuple[tuple[int, ...], int]:
    """The (H, W, C) input shape and class count to summarize at: given ones win, else the data set's
    registry entry's, so `summary` and `bench` need no data on disk."""
    from dilbench.errors import UsageError

    reader = READERS.get(dataset)
    shape = input_shape or (reader.IMAGE_SHAPE if reader else None)
    classes = num_classes or (reader.NUM_CLASSES if reader else None)
    if shape is None or classes is None:
        raise UsageError(f"data set {dataset!r} has no fixed image shape; give --input-shape H,W,C and --classes N")
    return tuple(shape), classes
