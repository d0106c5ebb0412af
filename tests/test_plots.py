"""Every plot dilbench makes, inspected as a matplotlib Figure: a title, labelled axes, and the details a
reader relies on (log counts, shared bins, whole epochs, a single epoch visible, names of layer groups)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from toolkit import CONFIGS, QUICKSTART

from dilbench.augment.pipeline import build_augmenter
from dilbench.config import load_config
from dilbench.data import Dataset
from dilbench.report.compare import compare
from dilbench.report.curves import Arm, ClaimPanel, claims_figure, flops_label, table_figure
from dilbench.report.plots import curves_figure, weight_bins, weights_figure
from dilbench.report.runs_index import RunRecord


def assert_readable(fig: Figure) -> None:
    """A title, and every drawn panel titled with both axes labelled (its own label or the figure's)."""
    assert fig.get_suptitle()
    panels = [ax for ax in fig.axes if ax.axison]
    assert panels
    for ax in panels:
        assert ax.get_title()
        assert ax.get_xlabel() or fig.get_supxlabel()
        assert ax.get_ylabel() or fig.get_supylabel()


def record(epoch: int, acc: float, split: str = "test") -> dict:
    return {"epoch": epoch, "train_loss": 2.0 - acc, "train_acc": acc - 0.1, "eval_loss": 2.1 - acc, "eval_acc": acc,
            "eval_split": split, "seconds": 1.0, "images_per_s": 10.0, "updates": [3], "updates_total": [3 * epoch]}


def integer_ticks(ax) -> list[float]:
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(t == int(t) for t in ticks)
    return ticks


# ---- curves.png --------------------------------------------------------------------------------------
def test_curves_label_the_eval_split_and_show_one_epoch():
    fig = curves_figure([record(1, 0.5, "validation")], "tiny")
    assert_readable(fig)
    assert fig.get_suptitle() == "tiny: 1 epoch"
    for ax in fig.axes:
        assert integer_ticks(ax) == [1.0]
        assert [line.get_label() for line in ax.get_lines()] == ["train", "validation"]
        assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines())  # one point is visible
    assert fig.axes[0].get_ylabel() == "cross-entropy loss"


def test_curves_of_many_epochs_have_whole_epoch_ticks():
    fig = curves_figure([record(e, 0.1 * e) for e in range(1, 8)], "tiny")
    assert fig.get_suptitle() == "tiny: 7 epochs"
    assert integer_ticks(fig.axes[0])[-1] <= 7


# ---- weights_before.png, weights_after.png -------------------------------------------------------------
def test_weight_histograms_share_bins_and_count_on_a_log_axis():
    rng = np.random.default_rng(0)
    names = [f"block{i}_unit{j}" for i in range(1, 11) for j in range(1, 4)] + ["head"]  # 31 panels
    before = {name: rng.normal(0, 0.05, 500).astype(np.float32) for name in names}
    before["block1_unit1"][:8] = 1.0  # identity taps: 8 weights at 1.0 among 500
    after = {name: values * 1.5 for name, values in before.items()}
    bins = weight_bins(before, after)
    fig = weights_figure(after, bins, "run: weights after 2 epochs", "after 2 epochs", before, "at initialisation")
    assert_readable(fig)
    assert fig.get_supxlabel() == "weight value" and "log" in fig.get_supylabel()
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title().split("\n")[0] for ax in panels] == names
    first = panels[0]
    assert first.get_yscale() == "log"
    edges = bins["block1_unit1"]
    assert edges[0] == pytest.approx(float(after["block1_unit1"].min())) and edges[-1] == pytest.approx(1.5)
    assert len(edges) == 45  # int(2 sqrt(500)) = 44 bins
    filled = [patch for patch in first.patches if patch.get_fill()]
    assert [p.get_x() for p in filled] == pytest.approx(list(edges[:-1]))  # the after bars sit on the shared bins
    assert filled[-1].get_height() == 8  # the taps, moved to 1.5, in the last bin
    outline = [patch for patch in first.patches if not patch.get_fill()]
    assert len(outline) == 1  # the weights at initialisation, drawn as one step outline on the same bins
    assert fig.get_size_inches()[0] <= 22 and fig.get_size_inches()[1] <= 14  # 31 panels stay on a screen


def test_weight_histogram_without_reference_has_no_legend():
    weights = {"layer1": np.linspace(-1, 1, 80)}
    fig = weights_figure(weights, weight_bins(weights), "run: weights at initialisation", "at initialisation")
    assert_readable(fig)
    assert len(weight_bins(weights)["layer1"]) == 21  # at least 20 bins
    assert not fig.legends


def test_context_module_groups_are_named_by_layer():
    from dilbench.models import build_model

    config = load_config(QUICKSTART, ["model.channels=2", "model.hidden=[4]"])
    model = build_model(config.model, (28, 28, 1), 10, "float32", 0)
    assert model.group_names == ["layer1_d1", "layer2_d1", "layer3_d2", "layer4_d4", "layer5_d8", "layer6_d16",
                                 "layer7_d1", "layer8_1x1"]


# ---- compare --plot and the sweep results page -----------------------------------------------------------
def fake_run(root: Path, name: str, lr: float, seed: int, accs: list[float]) -> None:
    path = root / f"{name}-s{seed}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(f"name: {name}\nseed: {seed}\noptimizer:\n  lr: {lr}\n")
    (path / "meta.json").write_text(json.dumps({"status": "completed"}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(record(e, a)) + "\n" for e, a in enumerate(accs, start=1)))


def test_compare_plot_draws_a_one_epoch_run_as_a_marker(tmp_path):
    fake_run(tmp_path, "a", 1e-3, 0, [0.5])
    fig = table_figure(compare([str(tmp_path)]))
    assert_readable(fig)
    assert fig.get_suptitle() == "1 run"
    for ax in fig.axes:
        assert integer_ticks(ax) == [1.0]
        lines = ax.get_lines()
        assert len(lines) == 2 and all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for line in lines)


def test_compare_plot_of_groups_with_one_epoch_shows_their_spread(tmp_path):
    for seed, acc in enumerate((0.4, 0.5, 0.6)):
        fake_run(tmp_path, "a", 1e-3, seed, [acc])
    fig = table_figure(compare([str(tmp_path)], group_by="optimizer.lr"))
    assert_readable(fig)
    assert fig.get_suptitle().startswith("1 group ")
    accuracy = fig.axes[1]
    bars = sorted(np.asarray(c.get_segments()[0]).ravel().tolist() for c in accuracy.collections if c.get_segments())
    assert bars == [pytest.approx([1, 0.3, 1, 0.5]), pytest.approx([1, 0.4, 1, 0.6])]  # min-max bars: train, eval


def test_compare_plot_of_many_epochs(tmp_path):
    for seed in range(2):
        fake_run(tmp_path, "b", 3e-4, seed, [0.1 * e + 0.01 * seed for e in range(1, 13)])
    fig = table_figure(compare([str(tmp_path)], group_by="optimizer.lr"))
    assert_readable(fig)
    assert integer_ticks(fig.axes[0])[-1] <= 12 and fig.axes[0].collections  # a band, not bars


# ---- a sweep page's curves_flops.png: one panel per claim -------------------------------------------------
def flops_run(cost: float, accs: list[float]) -> RunRecord:
    return RunRecord.of(Path("r"), status="completed",
                     metrics=[{**record(e, a), "train_flops": e * cost} for e, a in enumerate(accs, start=1)])


def test_claims_figure_has_a_log_flops_panel_per_claim_with_its_two_arms_and_the_budget():
    cheap = [flops_run(1e12, [0.2, 0.3, 0.4]), flops_run(1e12, [0.2, 0.32, 0.42])]  # final epoch at 3e12
    dear = [flops_run(8e12, [0.3, 0.5, 0.6]), flops_run(8e12, [0.35, 0.5, 0.65])]  # 8e12 to 2.4e13: no value at 3e12
    middle = [flops_run(2e12, [0.25, 0.45, 0.5])]  # 2e12, 4e12, 6e12: 0.35 at 3e12
    panels = [ClaimPanel("c > a: unfair_back beats standard", (Arm("c: schedule=unfair_back", middle), Arm("a: standard", cheap)),
                         3e12, "a", "supports (adj. p 0.0021)"),
              ClaimPanel("e > a: unfair_front beats standard", (Arm("e", dear), Arm("a", cheap)), 3e12, "a", "cannot decide (no test)"),
              ClaimPanel("x > y: no flops", (Arm("x", []), Arm("y", [])), None, "", "cannot decide (no test)"),
              ClaimPanel("z > a: another", (Arm("z", middle), Arm("a", cheap)), 3e12, "a", "cannot decide (adj. p 1.0)")]
    fig = claims_figure(panels)
    assert_readable(fig)
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 6 and len(axes) == 4  # 2 rows of 3; the two left over are blank
    first = axes[0]
    assert first.get_xscale() == "log" and first.get_xlabel() == "training FLOPs (log scale)"
    assert first.get_title() == "c > a: unfair_back beats standard\nat equal FLOPs: supports (adj. p 0.0021)"
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["c: schedule=unfair_back (n=1)", "a: standard (n=2)"]
    lines = first.get_lines()
    means = [line for line in lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 1]
    assert [list(line.get_xdata()) for line in means] == [[2e12, 4e12, 6e12], [1e12, 2e12, 3e12]]  # the two arms only
    assert list(means[1].get_ydata()) == pytest.approx([0.2, 0.31, 0.41])
    budget = [line for line in lines if line.get_linestyle() == "--"]
    assert len(budget) == 1 and list(budget[0].get_xdata()) == [3e12, 3e12]
    dots = [line for line in lines if line.get_linestyle() == "None"]  # each run's value at the budget
    assert [list(d.get_ydata()) for d in dots] == [pytest.approx([0.35]), pytest.approx([0.4, 0.42])]
    assert any(t.get_text() == "budget 3e12 (a's final epoch)" for t in first.texts)
    dear_dots = [line for line in axes[1].get_lines() if line.get_linestyle() == "None"]
    assert [len(d.get_ydata()) for d in dear_dots] == [0, 2]  # unfair_front's runs never were at 3e12
    assert [t.get_text() for t in axes[2].texts] == ["no runs with train_flops"]
    ticks = [flops_label(t) for t in first.get_xticks() if first.get_xlim()[0] <= t <= first.get_xlim()[1]]
    assert ticks == ["1e12", "2e12", "5e12"]


def test_flops_labels():
    assert [flops_label(v) for v in (2.72e13, 1e13, 7e13, 2.31e14, 500.0)] == ["2.7e13", "1e13", "7e13", "2.3e14", "5e2"]


def test_compare_plot_can_put_flops_on_a_log_axis(tmp_path):
    fake_run(tmp_path, "a", 1e-3, 0, [0.5, 0.6])
    for path in tmp_path.glob("*/metrics.jsonl"):
        path.write_text("".join(json.dumps({**json.loads(line), "train_flops": 1e12 * (i + 1)}) + "\n"
                                for i, line in enumerate(path.read_text().splitlines())))
    fig = table_figure(compare([str(tmp_path)]), "flops", log_x=True)
    assert all(ax.get_xscale() == "log" and ax.get_xlabel().endswith("log scale") for ax in fig.axes)


# ---- plots/augmentation.png and `dilbench augment preview` ------------------------------------------
def test_augmentation_preview_names_rows_and_columns():
    from dilbench.report.augmentation import preview_figure

    config = load_config(CONFIGS / "unfair_back_aug.yaml")
    rng = np.random.default_rng(0)
    data = Dataset("toy", rng.integers(0, 255, (6, 8, 8, 3), dtype=np.uint8), np.arange(6) % 2,
                   np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1, np.int64), ("cat", "dog"), "test")
    fig = preview_figure(build_augmenter(config.augmentation, 3), data, 0, "toy: augmentation", images=3, versions=2)
    assert fig.get_suptitle() == "toy: augmentation"
    axes = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_title() for ax in axes[0]] == ["original", "augmented 1", "augmented 2"]
    assert all(ax.get_ylabel() in ("cat", "dog") for ax in axes[:, 0])


# ---- saving ---------------------------------------------------------------------------------------------
def test_plots_are_laid_out_once_and_save_as_savefig_would(tmp_path):
    """`_save` lays a figure out once and saves it without its layout engine (savefig would lay it out in a
    draw of its own): the file is byte for byte what savefig writes of the same figure."""
    from dilbench.report.plots import _save, weight_bins

    rng = np.random.default_rng(0)
    before = {"layer1_d1": rng.normal(0, 0.1, 200), "head": rng.normal(0, 0.02, 5000)}
    after = {name: values * 1.1 for name, values in before.items()}
    figures = (lambda: curves_figure([record(e, 0.5 + 0.04 * e) for e in range(1, 6)], "run"),
               lambda: weights_figure(after, weight_bins(before, after), "run: weights", "after", before, "before"))
    for make in figures:
        _save(make(), tmp_path / "saved.png")
        make().savefig(tmp_path / "savefig.png", dpi=100)
        assert (tmp_path / "saved.png").read_bytes() == (tmp_path / "savefig.png").read_bytes()


def test_compare_plot_of_more_rows_than_lines_draws_a_sample_over_a_band_of_all(tmp_path, monkeypatch):
    """Thousands of runs are not thousands of lines: an even sample of rows over a grey min-max band of every
    run, and the title says so (MAX_LINES made small here)."""
    from dilbench.report import curves

    monkeypatch.setattr(curves, "MAX_LINES", 4)
    monkeypatch.setattr(curves, "MAX_LEGEND", 2)
    for seed in range(9):
        fake_run(tmp_path, "r", 1e-3, seed, [0.1 + 0.05 * seed, 0.2 + 0.05 * seed, 0.9 if seed == 4 else 0.3])
    assert curves.sample(9, 4) == [0, 3, 5, 8] and curves.sample(3, 4) == [0, 1, 2]
    fig = table_figure(compare([str(tmp_path)]))
    assert_readable(fig)
    assert fig.get_suptitle().startswith("9 runs, 4 drawn (evenly spaced in table order) over a grey band: min-max of all 9 runs")
    accuracy = fig.axes[1]
    assert len(accuracy.get_lines()) == 4 * 2  # eval and train of each drawn run
    band = accuracy.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(0.9)  # run 4, whose last epoch stands out, is not drawn but in the band
    assert max(max(line.get_ydata()) for line in accuracy.get_lines()) < 0.9
    grouped = table_figure(compare([str(tmp_path)], group_by="seed"))
    assert grouped.get_suptitle().startswith("9 groups, 4 drawn")
