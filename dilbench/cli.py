"""The `dilbench` command line: parse, call the library, turn user errors into one-line messages.

Commands stay thin; TensorFlow is imported only by the commands that train.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from dilbench import __version__
from dilbench.config import dump_config, load_config
from dilbench.errors import DilbenchError

log = logging.getLogger("dilbench")


class DilbenchGroup(click.Group):
    """Shows DilbenchErrors as `Error: message` with their exit code; `--debug` keeps the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DilbenchError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=DilbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dilbench")
@click.option("--debug", is_flag=True, help="Show full tracebacks and TensorFlow's own logging.")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on the console (log.txt keeps everything).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """dilbench: train and compare dilated-convolution, all-conv and ResNet v2 experiments.

    \b
      dilbench train configs/quickstart.yaml
      dilbench train configs/context_mnist.yaml --set model.channels=64
      dilbench train --resume runs/quickstart-20261122-101500-ab12
    """
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, quiet=quiet)
    _setup_logging(debug, quiet)


def _setup_logging(debug: bool, quiet: bool) -> None:
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(getattr(h, "dilbench_console", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.dilbench_console = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    for handler in log.handlers:
        if getattr(handler, "dilbench_console", False):
            handler.setLevel(logging.WARNING if quiet else logging.DEBUG)


set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config key, e.g. --set model.channels=64 (repeatable; values are YAML).",
)


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@set_option
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False), help="Where run directories go.")
@click.option("--name", help="Run name (default: the config's `name`).")
@click.option("--dry-run", is_flag=True, help="Validate and print the resolved config; train nothing.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue an interrupted run directory.")
def train(config: str | None, overrides: tuple[str, ...], runs_dir: str, name: str | None, dry_run: bool, resume_dir: str | None) -> None:
    """Train CONFIG into a new run directory under --runs-dir."""
    command = [Path(sys.argv[0]).name, *sys.argv[1:]]
    if resume_dir:
        if config or overrides or name or dry_run:
            raise click.UsageError("--resume takes only the run directory; its config.yaml is reused as it is")
        from dilbench.training.launch import resume_run

        run = resume_run(resume_dir, command)
        click.echo(run.path)
        return
    if not config:
        raise click.UsageError("give a CONFIG file (e.g. configs/quickstart.yaml) or --resume RUN_DIR")
    if name:
        overrides = (*overrides, f"name={name}")
    resolved = load_config(config, overrides)
    if dry_run:
        click.echo(dump_config(resolved), nl=False)
        return
    from dilbench.training.launch import start_run

    run = start_run(resolved, runs_dir, command)
    click.echo(run.path)


@cli.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@set_option
def validate(configs: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Check config files without training; exit code 2 if any is invalid."""
    failed = 0
    for path in configs:
        try:
            load_config(path, overrides)
            click.echo(f"ok: {path}")
        except DilbenchError as err:
            failed += 1
            click.echo(f"Error: {err}", err=True)
    if failed:
        sys.exit(2)


def main() -> None:
    cli(prog_name="dilbench")
