"""The `dilbench` command line: parse, call the library, turn user errors into one-line messages.

Commands stay thin; TensorFlow is imported only by the commands that train.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path

import click

from dilbench import __version__
from dilbench.errors import DilbenchError, UsageError
from dilbench.examples import resolve_config, resolve_experiment
from dilbench.report.formats import FORMATS
from dilbench.tables import text_table
from dilbench.tfquiet import import_tensorflow, set_verbose

log = logging.getLogger("dilbench")


class DilbenchGroup(click.Group):
    """Shows errors as one line `Error: message` with their exit code; `--debug` keeps the traceback.

    A DilbenchError is the user's to fix (its message says how); anything else is a bug or an
    environment problem, shown as its type and message with a pointer to `--debug`.
    """

    group_class = type  # subgroups (check, augment) behave the same

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except DilbenchError as err:
            _fail(ctx, str(err), err.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130)
        except Exception as err:
            _fail(ctx, f"{type(err).__name__}: {err} (run with --debug for the traceback)", 1)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra) -> click.Context:
        """Keep the command line as given (the root group sees all of it), for meta.json and results pages."""
        given = list(args)
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        if parent is None:
            ctx.meta["dilbench.command_line"] = ["dilbench", *given]
        return ctx

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Every command also takes --debug and --quiet after its name: `dilbench train X --quiet`."""
        if not isinstance(cmd, click.Group):
            cmd.params.extend(option(cmd) for option in (_debug_option, _quiet_option))
        super().add_command(cmd, name)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    if ctx.obj and ctx.obj.get("debug"):
        raise
    echo_error(message)
    ctx.exit(code)


def _set_global_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        flags = ctx.find_root().ensure_object(dict)
        flags[param.name] = True
        _setup_logging(flags.get("debug", False), flags.get("quiet", False))


def _debug_option(cmd: click.Command) -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_global_flag,
                        help="Show full tracebacks and TensorFlow's own logging.")


def _quiet_option(cmd: click.Command) -> click.Option:
    return click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, callback=_set_global_flag,
                        help="Only warnings and errors on the console (log.txt keeps everything).")


def load_config(config, overrides=()):
    """dilbench.config's load_config, imported on first use: it pulls in every registry (data, models,
    schedules) and NumPy, which `compare`, `show` and `--help` never need."""
    from dilbench.config import load_config as load

    return load(config, overrides)


def dump_config(config) -> str:
    from dilbench.config import dump_config as dump

    return dump(config)


def command_line() -> list[str]:
    """The command line this command was called with, as Click parsed it (`dilbench train ...`)."""
    return list(click.get_current_context().meta.get("dilbench.command_line", ["dilbench"]))


def echo_error(message: str) -> None:
    """`Error: ...` on stderr, once per line: a config with several problems shows each on a line of its own."""
    for line in message.splitlines() or [""]:
        click.echo(f"Error: {line}", err=True)


@click.group(cls=DilbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dilbench")
@click.option("--debug", is_flag=True, help="Show full tracebacks and TensorFlow's own logging (also after the command).")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on the console (also after the command).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """dilbench: train and compare dilated-convolution, all-conv and ResNet v2 experiments.

    \b
      dilbench train quickstart                  # a bundled config, by name
      dilbench train my.yaml --set model.channels=64
      dilbench train --resume runs/quickstart-20261122-101500-ab12
      dilbench compare runs/
      dilbench configs                           # the bundled configs and experiments
    """
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet)
    _setup_logging(debug, quiet)


def _setup_logging(debug: bool, quiet: bool) -> None:
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter
    set_verbose(debug)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(getattr(h, "dilbench_console", False) for h in log.handlers):
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.dilbench_console = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    for handler in log.handlers:
        if getattr(handler, "dilbench_console", False):
            handler.setLevel(logging.WARNING if quiet else logging.DEBUG)


class ConfigFile(click.ParamType):
    """A config file path, or the name of a bundled config (`quickstart`); a path always wins."""

    name = "CONFIG"

    def convert(self, value, param, ctx) -> Path:
        if isinstance(value, Path):
            return value
        try:
            return resolve_config(value)
        except UsageError as err:
            self.fail(str(err), param, ctx)


def config_options(function):
    """CONFIG (a path or a bundled name) and the repeatable --set KEY=VALUE, shared by every command
    that reads a run config; the command loads them with `load_config(config, overrides)`."""
    function = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override a config key, e.g. --set model.channels=64 (repeatable; values are YAML).",
    )(function)
    return click.argument("config", type=ConfigFile())(function)


@cli.command()
@click.argument("config", required=False, type=ConfigFile())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set model.channels=64 (repeatable; values are YAML).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False), help="Where run directories go.")
@click.option("--name", help="Run name (default: the config's `name`).")
@click.option("--dry-run", is_flag=True, help="Validate and print the resolved config; train nothing.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue an interrupted run directory; with --set train.epochs=N, extend a run to N epochs.")
@click.option("--restart", is_flag=True,
              help="With --resume: start the run over, keeping its metrics.jsonl, checkpoints/ and events/ as *.old-<time>.")
@click.option("--on-end", metavar="CMD",
              help="Shell command to run when the run ends (completed, failed or interrupted), with $DILBENCH_RUN_DIR, "
                   "$DILBENCH_RUN_STATUS and $DILBENCH_RUN_NAME set; its failure only warns.")
@click.option("--hook-timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True, metavar="SECONDS",
              help="Stop the --on-end command after this long.")
def train(config: Path | None, overrides: tuple[str, ...], runs_dir: str, name: str | None,
          dry_run: bool, resume_dir: str | None, restart: bool, on_end: str | None, hook_timeout: float) -> None:
    """Train CONFIG (a YAML file, or a bundled config name such as `quickstart`) into a new run
    directory under --runs-dir; prints the run directory (the only output on stdout).

    One process at a time writes a run: a second `train` on the same run directory is refused (exit
    code 1). A run directory whose checkpoints are gone is resumed only with --restart.

    --on-end CMD runs CMD through the shell once the run has ended and released its directory, e.g.
    --on-end 'notify-send "$DILBENCH_RUN_STATUS" "$DILBENCH_RUN_DIR"'; a failing or hanging command
    (stopped after --hook-timeout) is one warning and never changes the run's status or exit code.
    """
    from dilbench.runs.hooks import Hook

    hook = Hook(on_end, hook_timeout) if on_end else None
    command = command_line()
    if restart and not resume_dir:
        raise click.UsageError("--restart goes with --resume RUN_DIR")
    if resume_dir:
        if config or name or dry_run:
            raise click.UsageError("--resume takes the run directory (and --set train.epochs=N to extend it); "
                                   "its config.yaml is reused")
        from dilbench.launch import resume_run

        run = resume_run(resume_dir, command, restart=restart, overrides=overrides, on_end=hook)
        click.echo(run.path)
        return
    if not config:
        raise click.UsageError("give a CONFIG file or bundled name (e.g. quickstart) or --resume RUN_DIR")
    if name:
        overrides = (*overrides, f"name={name}")
    resolved = load_config(config, overrides)
    if dry_run:
        click.echo(dump_config(resolved), nl=False)
        return
    from dilbench.launch import start_run

    run = start_run(resolved, runs_dir, command, on_end=hook)
    click.echo(run.path)


@cli.command()
@click.argument("configs", nargs=-1, required=True, type=ConfigFile())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeatable).")
def validate(configs: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check config files without training; exit code 2 if any is invalid."""
    failed = 0
    for path in configs:
        try:
            load_config(path, overrides)
            click.echo(f"ok: {path}")
        except DilbenchError as err:
            failed += 1
            echo_error(str(err))
    if failed:
        sys.exit(2)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of a run config: every key with its type, default, allowed values and description.

    The shipped configs name a copy of it on their first line, so editors with a YAML language server
    (e.g. VS Code's YAML extension) complete and check keys; start your own configs with the same line:

    \b
      # yaml-language-server: $schema=dilbench.schema.json
      dilbench schema > dilbench.schema.json
    """
    from dilbench.config.json_schema import schema_text

    click.echo(schema_text(), nl=False)


def _parse_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(part) for part in value.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected H,W,C as three positive integers, e.g. 32,32,3; got {value!r}")
    return shape


@cli.command()
@config_options
@click.option("--input-shape", callback=_parse_shape, metavar="H,W,C", help="Input image shape (default: the data set's).")
@click.option("--classes", type=click.IntRange(min=1), help="Number of classes (default: the data set's).")
def summary(config: Path, overrides: tuple[str, ...], input_shape: tuple[int, ...] | None,
            classes: int | None) -> None:
    """Print CONFIG's model as layer groups: output shape, parameters, FLOPs; trains nothing."""
    resolved = load_config(config, overrides)
    import_tensorflow()
    from dilbench.models.summary import format_summary, input_spec, summarize

    shape, num_classes = input_spec(resolved.data.dataset, input_shape, classes)
    click.echo(f"{resolved.model.name} on {'x'.join(map(str, shape))} inputs, {num_classes} classes")
    click.echo(format_summary(summarize(resolved.model, shape, num_classes)))


@cli.command()
@click.option("--keys", is_flag=True, help="Also list each model's config keys with their defaults.")
def models(keys: bool) -> None:
    """List the registered models (the `model: name:` values) with one-line descriptions."""
    from dilbench.models import MODELS, model_keys

    rows = []
    for name, entry in MODELS.items():
        origin = MODELS.origin(name)
        rows.append([name, entry.description + ("" if origin == "built in" else f" [{origin}]")])
        rows += [["", f"  {key}: {json.dumps(default)}"] for key, default in (model_keys(name).items() if keys else ())]
    click.echo(text_table(rows))


@cli.command("plugins")
def list_plugins() -> None:
    """List the installed plugins (entry points of the group `dilbench.plugins`) and what each registered,
    or why it was skipped (docs/guides/plugins.md)."""
    from dilbench.registry import DISABLE, GROUP, load_plugins

    if os.environ.get(DISABLE, "") not in ("", "0"):
        click.echo(f"plugins are off: ${DISABLE} is set")
        return
    plugins = load_plugins()
    if not plugins:
        click.echo(f"no plugins installed (no distribution has an entry point in the group {GROUP})")
        return
    rows = [[plugin.name, plugin.dist, f"skipped: {plugin.problem}" if plugin.problem else ", ".join(plugin.entries) or "nothing"]
            for plugin in plugins]
    click.echo(text_table(rows, ["plugin", "distribution", "registered"]))


@cli.group()
def check() -> None:
    """Numerical checks of TensorFlow against independent references."""


@check.command("dilation")
@click.option("--seed", default=0, show_default=True, help="Seed of the random inputs and kernels.")
def check_dilation(seed: int) -> None:
    """Dilated convolution (d = 1..4) against NumPy and SciPy references; exit code 1 if any differs."""
    import_tensorflow()
    from dilbench.checks.dilation import format_checks, run_checks

    rows = run_checks(seed)
    click.echo(format_checks(rows))
    failed = sum(not row.ok for row in rows)
    if failed:
        raise DilbenchError(f"{failed} dilated-convolution comparisons failed (see the table above)")


@cli.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUNS_DIR_OR_GLOB...")
@click.option("--columns", "-c", metavar="COL,...",
              help="Columns to show (see COLUMNS); a leading `+` adds the whole list to the default ones (+optimizer.lr,path).")
@click.option("--where", "-w", multiple=True, metavar="KEY=VALUE",
              help="Keep runs where KEY=V1,V2 (any of), KEY!=V, KEY>V, KEY>=V, KEY<V or KEY<=V; repeat to require all.")
@click.option("--sort", "-s", metavar="[-]COL,...", help="Sort by these columns, `-` for descending (e.g. -max:eval_acc).")
@click.option("--top", type=click.IntRange(min=1), metavar="N", help="Keep the first N rows (after --sort).")
@click.option("--diff", is_flag=True, help="Show only the config keys that differ between the selected runs (after `run`, or --columns).")
@click.option("--group-by", "-g", metavar="KEY,...", help="One row per distinct value of these keys, with statistics (see GROUPS).")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the table to FILE instead of the terminal.")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png",
              help="Also draw loss and accuracy curves of the rows (groups: mean with a min-max band; over 100 rows: "
                   "a sample of 100 over a band of all).")
@click.option("--list-columns", is_flag=True, help="List every column the runs offer, then exit.")
@click.option("--x", "x_axis", type=click.Choice(["epoch", "flops", "seconds"]), default="epoch", show_default=True,
              help="x-axis of --plot: epochs, cumulative training FLOPs (cost model) or training seconds.")
@click.option("--at-flops", type=float, metavar="FLOPS",
              help="Add each run's test accuracy at this many training FLOPs (interpolated between epochs).")
def compare(runs: tuple[str, ...], columns: str | None, where: tuple[str, ...], sort: str | None, top: int | None, diff: bool,
            group_by: str | None, fmt: str, output: str | None, plot: str | None, list_columns: bool,
            x_axis: str, at_flops: float | None) -> None:
    """Compare runs: one row per run (or per group of runs), from their run directories.

    RUNS_DIR_OR_GLOB are run directories, directories holding runs (searched 3 levels deep, e.g.
    experiments/x/runs/) or globs. A run directory holds config.yaml or meta.json; running, failed,
    interrupted and half-written runs are listed with their status, and a missing or corrupt file is
    reported for its run (status `unknown` without meta.json, `corrupt` if it is unreadable).

    Runs are read through a summary index, .dilbench-index/ in each directory holding runs: a run
    whose files changed since is read from them again, so it is never stale, and deleting it is safe.
    DILBENCH_INDEX=off reads every file instead; --debug says what a call read (see the Compare guide).

    \b
    COLUMNS (--columns, --sort, --where and --group-by take the same names)
      run, path            run directory name / path
      name, status, seed   config name; running|completed|pruned|failed|interrupted|crashed|stale|unknown|corrupt; seed
      model, schedule, augmentation   model.name, schedule.name, augmentation.mode
      epochs               epochs done (records in metrics.jsonl)
      final_eval_acc       = last:eval_acc        best_eval_acc  = max:eval_acc
      best_epoch           = epoch_of:max:eval_acc (earliest epoch on ties)
      final_train_acc      = last:train_acc       gap = last:train_acc - last:eval_acc
      wall_time            seconds of training summed over epochs; images_per_s over all epochs
      train_flops          = last:train_flops, training FLOPs so far (the schedule's cost model)
      peak_rss_mib, cpu_util, gpu_peak_mib
                           peak memory (MiB), CPU time / wall time / usable CPUs, peak GPU memory;
                           empty for runs from before they were recorded
      data_sha256, dirty   the data files' SHA-256 (12 digits), ran from uncommitted changes
      tags, note           from `dilbench tag` and `dilbench note`; --where tag=baseline keeps runs
                           tagged baseline (tag!=draft: those without it)
      problems             missing or corrupt files of the run
      QUALIFIER:KEY        last:, max:, min:, mean:, epoch_of:max:, epoch_of:min: over a metrics.jsonl
                           key (eval_acc, eval_loss, train_acc, train_loss, seconds, images_per_s, ...)
      a.b.c                any config.yaml key, e.g. optimizer.lr, model.channels, train.epochs
      meta.a.b             any meta.json key, e.g. meta.host, meta.git.commit
      at:AXIS=N:KEY        KEY at N on the epoch, flops or seconds axis, interpolated linearly between
                           the epochs around it (e.g. at:flops=1e12:eval_acc; --at-flops N adds it)
    Default: run, name, status, model, schedule, augmentation, seed, epochs, final_eval_acc,
    best_eval_acc, best_epoch, final_train_acc, gap, wall_time, images_per_s (in CSV and JSON too).

    An unknown name is an error (exit 2) listing close matches; a key only some runs have is `-`.
    A --where that cannot match as written (`seed==1`, `seed>`, `seed>abc` when seeds are numbers)
    is an error (exit 2) showing the accepted forms.

    \b
    GROUPS (--group-by schedule.name,augmentation.mode)
      One row per distinct combination of the keys' values (a missing key counts as a value);
      everything else, typically the seed, varies inside a group. Columns: the keys, n (runs),
      status (counts), varies (config keys that differ inside the group: check it says only
      `seed`/`name`), then each measured column as mean ± std [min, max] over the group's runs
      that have a value. std is the sample standard deviation (n-1); a group of one shows its value
      alone (CSV: empty std, JSON: null). CSV/JSON split cells into COL.mean, COL.std, COL.min,
      COL.max. Settings that are not keys (name, seed, ...) are left out; --sort uses the mean
      (or `n`); groups are ordered by --sort, then by key values.

    \b
    Examples
      dilbench compare runs/
      dilbench compare 'experiments/unfair/runs/*' --where status=completed --sort -max:eval_acc --top 5
      dilbench compare runs/ --group-by schedule.name,augmentation.mode --plot groups.png
      dilbench compare runs/ --columns run,optimizer.lr,last:eval_loss --format csv -o runs.csv
      dilbench compare runs/ --diff
      dilbench compare runs/ --group-by schedule.name --at-flops 1e13 --plot flops.png --x flops
    """
    import gc

    from dilbench.report.runs_index import no_gc

    if _QUICK_EXIT:  # the process ends with this command (main): garbage collection never pays off
        gc.disable()
        _compare(runs, columns, where, sort, top, diff, group_by, fmt, output, plot, list_columns, x_axis, at_flops)
        return
    with no_gc():  # a table of many runs is millions of objects and no cycles
        _compare(runs, columns, where, sort, top, diff, group_by, fmt, output, plot, list_columns, x_axis, at_flops)


def _compare(runs: tuple[str, ...], columns: str | None, where: tuple[str, ...], sort: str | None, top: int | None, diff: bool,
             group_by: str | None, fmt: str, output: str | None, plot: str | None, list_columns: bool,
             x_axis: str, at_flops: float | None) -> None:
    from dilbench.report.compare import catalog_of
    from dilbench.report.compare import compare as compare_runs
    from dilbench.report.formats import render
    from dilbench.runs.rundir import write_atomic

    if list_columns:
        click.echo(catalog_of(runs).describe(), nl=False)
        return
    table = compare_runs(runs, columns=columns, where=where, sort=sort, top=top, diff=diff, group_by=group_by,
                         at_flops=at_flops)
    if table.reader is not None:
        log.debug(table.reader.describe())
    for path, problem in table.problems:
        click.echo(f"warning: {path}: {problem}", err=True)
    text = render(table, fmt)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(output), text)
        click.echo(f"wrote {output} ({len(table.rows)} rows)", err=True)
    else:
        click.echo(text, nl=False)
    if plot:
        from dilbench.report.curves import plot_table

        plot_table(table, Path(plot), x_axis)
        table.save_index()  # epochs the plot read from files
        click.echo(f"wrote {plot}", err=True)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def show(run_dir: str) -> None:
    """Show one run: status, config summary, final and best metrics, updates per layer group, and
    the paths of its plots, TensorBoard events, checkpoints and log."""
    from dilbench.report.show import show as describe_run

    click.echo(describe_run(run_dir), nl=False)


class ItemsCommand(click.Command):
    """A command whose arguments may start with `-` (`dilbench tag RUN -draft`): everything but --help, --debug
    and --quiet/-q is an argument (after `--`, everything is)."""

    OPTIONS = ("-h", "--help", "--debug", "--quiet", "-q")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head, tail = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])
        options = [a for a in head if a in self.OPTIONS]
        return super().parse_args(ctx, [*options, "--", *(a for a in head if a not in self.OPTIONS), *tail])


@cli.command(cls=ItemsCommand)
@click.argument("items", nargs=-1, required=True, metavar="RUN_DIR... [+TAG] [-TAG]")
def tag(items: tuple[str, ...]) -> None:
    """Add (+TAG) or remove (-TAG) tags of runs; without any, print their tags.

    \b
      dilbench tag runs/quickstart-20261122-101500-ab12 +baseline -draft
      dilbench tag runs/a-* +sweep2          # the shell's glob: many runs at once
      dilbench compare runs/ --where tag=baseline --columns +tags,note

    Tags live in the run's tags.json (not meta.json) and are safe to change while the run trains or
    other taggers work on it. A tag is letters, digits and _ . : / @ = + - (no spaces or commas).
    """
    from dilbench.runs.annotations import check_tag, edit_tags
    from dilbench.runs.rundir import RunDir

    add = [check_tag(item[1:]) for item in items if item.startswith("+")]
    remove = [check_tag(item[1:]) for item in items if item.startswith("-")]
    runs = [RunDir.open(item) for item in items if not item.startswith(("+", "-"))]
    if not runs:
        raise UsageError("name at least one run directory, then +TAG to add and -TAG to remove tags")
    for run in runs:
        tags = edit_tags(run, add, remove) if add or remove else run.read_tags()
        click.echo(f"{run.path}: {', '.join(tags) or '(no tags)'}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("text", required=False)
@click.option("--append", "-a", is_flag=True, help="Add TEXT as a new line after the note instead of replacing it.")
@click.option("--clear", is_flag=True, help="Remove the note.")
def note(run_dir: str, text: str | None, append: bool, clear: bool) -> None:
    """Set (or with --append, extend) the note of a run; without TEXT, print it.

    The note is the run's notes.md, written atomically apart from meta.json, so it is safe while the run
    trains. `dilbench compare --columns +note` shows it (lines joined by ` / `), `dilbench show` in full.
    """
    from dilbench.runs.annotations import set_note
    from dilbench.runs.rundir import RunDir

    run = RunDir.open(run_dir)
    if clear and (text or append):
        raise UsageError("--clear removes the note; give no TEXT or --append with it")
    if text is None and not clear:
        if append:
            raise UsageError("--append needs the TEXT to add")
        click.echo(run.read_note() or "(no note)")
        return
    written = set_note(run, "" if clear else text or "", append=append)
    click.echo(f"{run.path}: {'note removed' if not written else f'note of {len(written.splitlines())} line(s)'}", err=True)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False), metavar="RUN_DIR...")
def rm(runs: tuple[str, ...]) -> None:
    """Move runs to the trash of their runs directory (<runs dir>/.trash/), where compare, TensorBoard and
    sweeps no longer see them (a sweep treats them as missing). A run some process is writing is refused.

    \b
      dilbench rm runs/quickstart-20261122-101500-ab12
      dilbench trash list                  # what is in runs/.trash
      dilbench trash restore runs/quickstart-20261122-101500-ab12
      dilbench trash purge --older-than 30d
    """
    from dilbench.runs.trash import move_to_trash

    failed = 0
    for path in runs:
        try:
            entry = move_to_trash(path)
        except DilbenchError as err:
            failed += 1
            echo_error(str(err))
            continue
        click.echo(f"moved {path} to {entry.path}", err=True)
    if failed:
        sys.exit(1)


@cli.group()
def trash() -> None:
    """Runs moved aside by `dilbench rm`: list them, restore them, or remove them for good."""


@trash.command("list")
@click.argument("runs_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[RUNS_DIR...]")
def trash_list(runs_dirs: tuple[str, ...]) -> None:
    """The runs in the trash of RUNS_DIR (default: runs/; searched 3 levels deep): deleted when, size, from where."""
    from dilbench.runs.trash import find_trash, tree_bytes

    entries = find_trash(runs_dirs or ("runs",))
    rows = [[entry.deleted.strftime("%Y-%m-%d %H:%M"), _human_bytes(tree_bytes(entry.path)), str(entry.original), str(entry.path)]
            for entry in entries]
    if not rows:
        click.echo("the trash is empty", err=True)
        return
    click.echo(text_table(rows, ["deleted (UTC)", "size", "run", "in the trash"], [False, True, False, False]))


@trash.command("restore")
@click.argument("entries", nargs=-1, required=True, metavar="TRASHED_RUN...")
def trash_restore(entries: tuple[str, ...]) -> None:
    """Put runs back where they were: give the path in the trash, or the path the run had. Refused when a run of
    that name exists again."""
    from dilbench.runs.trash import restore

    for entry in entries:
        click.echo(f"restored {restore(entry)}", err=True)


@trash.command("purge")
@click.argument("runs_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[RUNS_DIR...]")
@click.option("--older-than", metavar="AGE", help="Only runs deleted longer ago than AGE: 30d, 12h, 90m, 2w.")
@click.option("--all", "everything", is_flag=True, help="Every run in the trash.")
@click.option("--dry-run", is_flag=True, help="Print what would be removed and the bytes it frees; remove nothing.")
def trash_purge(runs_dirs: tuple[str, ...], older_than: str | None, everything: bool, dry_run: bool) -> None:
    """Remove runs in the trash of RUNS_DIR (default: runs/) for good: --older-than AGE or --all."""
    from datetime import UTC, datetime

    from dilbench.runs.trash import find_trash, parse_age, purge, tree_bytes

    if bool(older_than) == everything:
        raise UsageError("give --older-than AGE (e.g. 30d) or --all")
    age = parse_age(older_than) if older_than else None
    entries = find_trash(runs_dirs or ("runs",))
    busy: list[str] = []
    if dry_run:
        now = datetime.now(UTC)
        chosen = [(e, tree_bytes(e.path)) for e in entries if age is None or e.age(now) >= age]
    else:
        chosen, busy = purge(entries, age)
    for entry, size in chosen:
        click.echo(f"{'would remove' if dry_run else 'removed'} {entry.path} ({_human_bytes(size)})")
    total = sum(size for _, size in chosen)
    click.echo(f"{'would free' if dry_run else 'freed'} {_human_bytes(total)} ({total} bytes) from {len(chosen)} of "
               f"{len(entries)} trashed run(s)", err=True)
    for message in busy:
        echo_error(message)
    if busy:
        sys.exit(1)


@cli.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUNS_DIR_OR_GLOB...")
@click.option("--keep", type=click.Choice(["best", "latest"]), required=True,
              help="The checkpoint set to keep: best/ (the best evaluated epoch) or latest/ (where a resume continues).")
@click.option("--dry-run", is_flag=True, help="Print what would be removed and the bytes it frees; remove nothing.")
def prune(runs: tuple[str, ...], keep: str, dry_run: bool) -> None:
    """Remove every checkpoint of RUNS but the --keep set (also start/ and checkpoints.old-* of --restart).

    Runs are found as compare finds them. A run being written is left alone, and so is one without the
    set to keep. After --keep best, resuming or extending a run trains again from best/'s epoch.
    """
    from dilbench.report.runs_index import find_runs
    from dilbench.runs.prune import plan
    from dilbench.runs.prune import prune as prune_run
    from dilbench.runs.rundir import RunDir

    total = 0
    for path in find_runs(runs):
        done = (plan if dry_run else prune_run)(RunDir(path), keep)
        if done.skipped:
            click.echo(f"{path}: {done.skipped}", err=True)
            continue
        total += done.bytes
        names = ", ".join(str(p.relative_to(path)) for p in done.remove) or "nothing"
        click.echo(f"{path}: {'would remove' if dry_run else 'removed'} {names} ({_human_bytes(done.bytes)})")
    click.echo(f"{'would free' if dry_run else 'freed'} {_human_bytes(total)} ({total} bytes)", err=True)


def _human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


@cli.command("tensorboard")
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: the first free one from 6006 up; 0: any free port).")
def tensorboard_command(runs: tuple[str, ...], host: str, port: int | None) -> None:
    """Start TensorBoard on RUNS (run directories or directories of runs; default: runs/) until Ctrl-C.

    Prints the URL. Each run shows as <run>/events/train and <run>/events/eval (the same tags, so
    train and evaluation curves share a chart), with its hyperparameters in the HParams tab.
    Ctrl-C stops it with exit code 0.
    """
    import threading

    from dilbench.report.tensorboard_server import start_tensorboard

    url = start_tensorboard([Path(r) for r in runs or ("runs",)], host, port)
    click.echo(url)
    click.echo("TensorBoard is running; Ctrl-C to stop", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("TensorBoard stopped", err=True)


@cli.command()
@config_options
@click.option("--steps", default=10, show_default=True, type=click.IntRange(min=1), help="Timed steps per method per round.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1), help="Interleaved rounds; medians are reported.")
@click.option("--no-keras", is_flag=True, help="Skip the Keras model.fit baseline.")
@click.option("--end-to-end", is_flag=True,
              help="Instead: real Trainer epochs on CONFIG's data against the bare step (--rounds measured epochs; "
                   "--steps and --no-keras do not apply).")
def bench(config: Path, overrides: tuple[str, ...], steps: int, rounds: int, no_keras: bool,
          end_to_end: bool) -> None:
    """Time a training step of every schedule, and Keras model.fit, on CONFIG's model, batch and precision.

    Prints images/s, each schedule's time relative to standard, and the ratio a FLOP model of the work
    predicts. Also times CONFIG's own schedule when it is custom, and under FreezeOut when it has one
    (weighted over the run's phases: its saving against the model). Uses random images of the data
    set's shape, so it needs no data.

    With --end-to-end: CONFIG's schedule only, on its real data: the bare compiled step and a Trainer
    epoch in alternating rounds; prints the epoch's training images/s relative to the bare step's and the
    share of the epoch spent outside training (evaluation, metrics, events, checkpoints, plots).
    """
    resolved = load_config(config, overrides)
    import_tensorflow()
    if end_to_end:
        _bench_end_to_end(resolved, rounds)
        return
    from dilbench.models.summary import input_spec
    from dilbench.training.bench import format_bench, run_bench

    shape, num_classes = input_spec(resolved.data.dataset, None, None)
    rows = run_bench(resolved, shape, num_classes, steps=steps, rounds=rounds, keras_baseline=not no_keras)
    title = (f"{resolved.model.name}, batch {resolved.train.batch_size}, {resolved.precision}"
             f"{', XLA' if resolved.runtime.xla else ''}: median of {rounds} rounds x {steps} steps")
    click.echo(format_bench(rows, title))


def _bench_end_to_end(resolved, rounds: int) -> None:
    from dilbench.launch.bench_end_to_end import format_end_to_end, run_end_to_end

    result = run_end_to_end(resolved, rounds)
    title = (f"end to end: {resolved.model.name}, {resolved.schedule.name}, batch {result.batch_size}, {resolved.precision}"
             f"{', XLA' if resolved.runtime.xla else ''}, {resolved.data.dataset}: {rounds} rounds")
    click.echo(format_end_to_end(result, title))


@cli.group()
def augment() -> None:
    """Look at a config's augmentation pipeline (docs/guides/augmentation.md)."""


@augment.command("preview")
@config_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write the grid to.")
@click.option("--images", default=8, show_default=True, type=click.IntRange(1, 64), help="Training images (rows).")
@click.option("--versions", default=6, show_default=True, type=click.IntRange(1, 16), help="Augmented versions of each image.")
def augment_preview(config: Path, overrides: tuple[str, ...], out: str, images: int, versions: int) -> None:
    """Write a grid of CONFIG's training images, each next to augmented versions, titled with class names."""
    resolved = load_config(config, overrides)
    from dilbench.report.augmentation import preview_config

    preview_config(resolved, Path(out), images, versions)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("experiment")
@click.option("--profile", "-p", help="The experiment file's profile to run (default: its first, e.g. quick).")
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Runs at a time: local processes with cores/N TensorFlow threads each (default 1), "
                   "or the Slurm array's limit (default: none).")
@click.option("--dry-run", is_flag=True, help="List the runs and what would happen to each (and the Slurm job script); run nothing.")
@click.option("--rerun-changed", is_flag=True, help="Start new runs where the existing ones have another config.")
@click.option("--report-only", is_flag=True, help="Rewrite the results page from the existing runs; run nothing.")
@click.option("--status", "show_status", is_flag=True, help="Show each run's state (run directory and Slurm job); run nothing.")
@click.option("--dashboard", is_flag=True,
              help="Open optuna-dashboard on the profile's search studies (live, until Ctrl-C); run nothing. "
                   "Needs pip install 'dilbench[dashboard]'.")
@click.option("--launcher", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="Run here, or submit the runs as a Slurm job array (one task per run; see docs/guides/sweeps.md).")
@click.option("--no-wait", is_flag=True, help="Slurm: submit and return; the last run to complete writes the results page.")
@click.option("--partition", help="Slurm: partition (default: the experiment file's `slurm:`, else the cluster's).")
@click.option("--time", "time_limit", metavar="TIME", help="Slurm: time limit per run, e.g. 30, 2:00:00 or 1-12:00:00.")
@click.option("--cpus-per-run", type=click.IntRange(min=1), help="Slurm: CPUs per run (also its TensorFlow threads).")
@click.option("--gpus-per-run", type=click.IntRange(min=0), help="Slurm: GPUs per run (--gres=gpu:N).")
@click.option("--mem", help="Slurm: memory per run, e.g. 4000 (MB) or 16G.")
@click.option("--sbatch-option", "sbatch_options", multiple=True, metavar="OPTION",
              help="Slurm: another sbatch option, e.g. --sbatch-option=--account=lab (repeatable).")
def sweep(experiment: str, profile: str | None, jobs: int | None, dry_run: bool, rerun_changed: bool, report_only: bool,
          show_status: bool, dashboard: bool, launcher: str, no_wait: bool, partition: str | None, time_limit: str | None,
          cpus_per_run: int | None, gpus_per_run: int | None, mem: str | None, sbatch_options: tuple[str, ...]) -> None:
    """Run an experiment: every case x grid combination under a profile, then write its results page.

    EXPERIMENT is an experiment file (or its directory), or a bundled experiment name such as
    `unfair_backprop` (its runs and results then go under ./experiments/<name>/).
    Runs go to the experiment's runs directory (<dir>/runs/<profile>/); re-running skips completed
    runs, resumes interrupted or failed ones and starts missing ones. A failing run does not stop
    the others (exit code 1 at the end). The page is <dir>/results/<profile>/RESULTS.md + curves.png.
    See docs/guides/sweeps.md.
    """
    from dilbench.sweep.command import SweepOptions, status
    from dilbench.sweep.command import dashboard as open_dashboard
    from dilbench.sweep.command import sweep as run_sweep
    from dilbench.sweep.slurm_submit import SlurmLaunch

    overrides = {"partition": partition, "time": time_limit, "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run,
                 "mem": mem, "sbatch_options": sbatch_options}
    if launcher == "local":
        given = [f"--{key.replace('_', '-')}" for key, value in overrides.items() if value not in (None, ())]
        if given or no_wait:
            raise UsageError(f"{', '.join(given + (['--no-wait'] if no_wait else []))}: only for --launcher slurm")
    if show_status and (dry_run or report_only):
        raise UsageError("--status only shows the runs; leave out --dry-run and --report-only")
    if dashboard and (dry_run or report_only or show_status or launcher != "local"):
        raise UsageError("--dashboard only shows the search's studies; leave out --dry-run, --report-only, --status and --launcher")
    command = shlex.join(command_line())
    path, output_directory = resolve_experiment(experiment)
    if show_status:
        status(path, profile, click.echo, output_directory)
        return
    if dashboard:
        open_dashboard(path, profile, click.echo, output_directory)
        return
    slurm = SlurmLaunch(overrides, wait=not no_wait) if launcher == "slurm" else None
    options = SweepOptions(profile=profile, jobs=jobs, dry_run=dry_run, rerun_changed=rerun_changed, report_only=report_only,
                           command=command, output_directory=output_directory, slurm=slurm)
    code = run_sweep(path, options, click.echo)
    if code:
        sys.exit(code)


@cli.command("configs")
def list_configs() -> None:
    """List the bundled configs and experiments: `dilbench train NAME`, `dilbench sweep NAME`."""
    from dilbench.examples import bundled_configs, bundled_experiments, config_summary, experiment_summary

    for title, examples, summary in (("configs (dilbench train NAME)", bundled_configs(), config_summary),
                                     ("experiments (dilbench sweep NAME)", bundled_experiments(), experiment_summary)):
        click.echo(f"{title}:")
        click.echo(text_table([[example.name, summary(example.path)] for example in examples], indent="  "))


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Copy the bundled configs and experiments into DIRECTORY (default: here) to edit them.

    Writes DIRECTORY/configs/*.yaml and DIRECTORY/experiments/<name>/; overwrites nothing.
    Then: dilbench train DIRECTORY/configs/quickstart.yaml
    """
    from dilbench.examples import init as copy_examples

    written = copy_examples(directory)
    click.echo(f"wrote {len(written)} files to {directory}/configs and {directory}/experiments", err=True)


_QUICK_EXIT: list[bool] = []  # main() runs the command: compare may leave its objects to the OS


def main() -> None:
    command = sys.argv[1:2] == ["compare"] or sys.argv[2:3] == ["compare"]
    if command:
        _QUICK_EXIT.append(True)
    try:
        cli(prog_name="dilbench")
    except SystemExit as done:
        if command:  # compare of 100,000 runs: seconds of freeing millions of objects one by one, which the OS does at once
            code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except OSError:  # a closed pipe (`| head`): what Python's own exit would have ignored too
                    code = code or 1
            os._exit(code)
        raise
