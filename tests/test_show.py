"""A real (tiny) training run read back by the tools people use: TensorBoard's own event reader,
`dilbench show` and `dilbench compare`, all agreeing with metrics.jsonl and meta.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from toolkit import invoke, metrics, train_tiny

GROUPS = 8  # 7 dilated layers + the final 1x1
STEPS = 5  # ceil(300 / 64)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("runs"), "runtime.deterministic=false")


LAYERS = ["layer1_d1", "layer2_d1", "layer3_d2", "layer4_d4", "layer5_d8", "layer6_d16", "layer7_d1", "layer8_1x1"]


def test_events_open_in_tensorboard(run):
    """TensorBoard's own reader (the one behind its dashboards) finds train and eval as sibling runs with the
    same scalar tags, histograms named by layer group, and the hyperparameters and config one level up."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.util import tensor_util

    def events(sub: str) -> EventAccumulator:
        accumulator = EventAccumulator(str(run / "events" / sub), size_guidance={"tensors": 0})
        accumulator.Reload()
        return accumulator

    train, evaluation, root = events("train"), events("eval"), events("")
    assert set(train.PluginTagToContent("scalars")) == ({"epoch_loss", "epoch_accuracy", "images_per_s", "system/peak_rss_mib",
                                                         "system/cpu_util"} | {f"updates/{n}" for n in LAYERS})
    assert set(evaluation.PluginTagToContent("scalars")) == {"epoch_loss", "epoch_accuracy"}
    assert set(train.PluginTagToContent("histograms")) == {f"weights/{n}" for n in [*LAYERS, "head"]}

    def values(events: EventAccumulator, tag: str) -> list[float]:
        points = events.Tensors(tag)
        assert [p.step for p in points] == [1, 2]
        return [float(tensor_util.make_ndarray(p.tensor_proto)) for p in points]

    records = metrics(run)
    for events_of, tag, key in ((evaluation, "epoch_accuracy", "eval_acc"), (evaluation, "epoch_loss", "eval_loss"),
                                (train, "epoch_accuracy", "train_acc"), (train, "epoch_loss", "train_loss")):
        assert values(events_of, tag) == pytest.approx([r[key] for r in records], rel=1e-6)
    assert values(train, "updates/layer3_d2") == [STEPS, STEPS]
    assert values(train, "system/peak_rss_mib") == pytest.approx([r["peak_rss_bytes"] / 2**20 for r in records], rel=1e-6)
    assert values(train, "system/cpu_util") == pytest.approx([r["cpu_util"] for r in records], rel=1e-6)
    histogram = tensor_util.make_ndarray(train.Tensors("weights/layer1_d1")[-1].tensor_proto)
    assert histogram.ndim == 2 and histogram.shape[1] == 3 and np.sum(histogram[:, 2]) == 3 * 3 * 1 * 4 + 4  # kernel + bias

    content = root.PluginTagToContent(hparams_metadata.PLUGIN_NAME)[hparams_metadata.SESSION_START_INFO_TAG]
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert start.group_name == run.name
    assert start.hparams["model.channels"].number_value == 4 and start.hparams["schedule.name"].string_value == "standard"
    assert start.hparams["model.dilations"].string_value == "[1, 1, 2, 4, 8, 16, 1]"
    config_text = tensor_util.make_ndarray(root.Tensors("config")[0].tensor_proto).item().decode()
    assert config_text == f"```yaml\n{(run / 'config.yaml').read_text()}```"


def test_show_of_a_real_run(run):
    result = invoke("show", str(run))
    assert result.exit_code == 0
    text = result.stdout
    last = metrics(run)[-1]
    assert "status  completed (2/2 epochs)\n" in text
    assert f"  final              2    {last['eval_acc']:.4f}    " in text
    assert f"updates per group (epoch 2 / total)\n  group1-{GROUPS}  {STEPS} / {2 * STEPS}\n" in text
    for plot in ("curves.png", "weights_after.png", "weights_before.png"):
        assert f"  plots        {run / 'plots' / plot}\n" in text
    assert f"  events       {run / 'events'} (TensorBoard runs: eval, train)\n" in text
    assert f"  {'':<11}  dilbench tensorboard {run}\n" in text
    meta = json.loads((run / "meta.json").read_text())
    source = meta["provenance"]["source"]
    provenance = _labelled(text, "provenance")  # its label column widens with the checkout ("not in patch")
    untracked = f"; {source['untracked_count']} untracked file(s)" if source.get("untracked_count") else ""
    assert provenance["source"] == f"{source['commit'][:12]}{' (dirty)' if source['dirty'] else ''} in {source['repo']}{untracked}"
    assert provenance["data"].startswith(f"mnist_bundled {meta['provenance']['data']['path']} (1.6 MiB, 1 file(s), sha256 ")
    if source.get("patch"):  # a dirty checkout (while developing): how to re-create it
        assert f"re-create it in a clone: git checkout {source['commit']} && git apply {run}/source.patch\n" in text
    from dilbench.report.formats import number

    assert f"  peak_rss_mib {number(max(r['peak_rss_bytes'] for r in metrics(run)) / 2**20)}  cpu_util " in text


def _labelled(text: str, section: str) -> dict[str, str]:
    """The `  label  text` lines of one section of `show`'s output, by label (a line under a label's, with none
    of its own, continues it and is left out)."""
    body = text.split(f"\n{section}\n", 1)[1].split("\n\n", 1)[0]
    return {m[1]: m[2] for line in body.splitlines() if (m := re.fullmatch(r"  (\S.*?)  +(.*)", line))}


def test_compare_agrees_with_meta(run):
    result = invoke("compare", str(run.parent), "--format", "json")
    (record,) = json.loads(result.stdout)
    meta = json.loads((run / "meta.json").read_text())
    assert record["status"] == meta["status"] == "completed"
    assert record["epochs"] == meta["epochs_done"] == 2
    assert record["final_eval_acc"] == meta["final_eval_acc"] and record["best_eval_acc"] == meta["best_eval_acc"]
    assert record["model"] == "context_module" and record["schedule"] == "standard" and record["seed"] == 7
    columns = "run,peak_rss_mib,cpu_util,gpu_peak_mib,data_sha256,dirty"
    result = invoke("compare", str(run.parent), "--format", "json", "--columns", columns)
    (record,) = json.loads(result.stdout)
    records = metrics(run)
    assert record["peak_rss_mib"] == max(r["peak_rss_bytes"] for r in records) / 2**20
    assert record["cpu_util"] == pytest.approx(sum(r["cpu_util"] for r in records) / 2) and record["gpu_peak_mib"] is None
    assert record["data_sha256"] == meta["provenance"]["data"]["sha256"][:12] and record["dirty"] == meta["git"]["dirty"]
    kept = invoke("compare", run.parent, "--where", f"data_sha256={record['data_sha256']}",
                  "--where", f"dirty={str(record['dirty']).lower()}", "--columns", "run")
    assert kept.exit_code == 0 and run.name in kept.stdout
