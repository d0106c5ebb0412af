"""One Optuna study per tuned group, in a journal file beside the runs: `<runs dir>/.sweep/study-<group>.log`.

Why a journal file (optuna's JournalStorage with JournalFileBackend) rather than SQLite or a server: every
process of a sweep (local `--jobs` workers, each training child, Slurm array tasks on other nodes) appends
to one file on the shared file system, so no database server is needed and NFS works: the backend's lock
is `JournalFileSymlinkLock` (optuna's default since 4.0), which takes the lock by creating a symlink, an
atomic operation even on NFSv2 (fcntl locks, which SQLite relies on, are broken on many NFS setups). Each
append is one write of whole lines followed by fsync. A lock left by a process killed while appending is
broken by the next writer after its 30 s grace period.

Who writes what (see tuning.py and trial.py):

- *ask*: the sweep (or a Slurm tuning task) asks for a trial under a second symlink lock,
  `study-<group>.log.ask.lock`, which also covers counting the trials against the budget and taking the
  new run's sweep lock, so two processes never ask past the budget or start one trial twice. Each ask
  uses a fresh sampler seeded by (sampler_seed, trial number): trial k's values depend only on the
  study's history, whichever process asks.
- *report / should_prune / tell*: the trial's own training process, after each epoch and at its end.
- *reconcile*: whoever asks first repairs what a kill left: a RUNNING trial whose run directory says
  completed or pruned is told so (the run directory is the truth, written before the journal).

Nothing here imports TensorFlow; Optuna is imported only by the functions that need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dilbench.config import dump_config
from dilbench.errors import UsageError
from dilbench.sweep.plan import Plan, TunedGroup
from dilbench.sweep.search import AshaPruner, Dimension, MedianPruner, Pruner, SearchSpec
from dilbench.typed.validate import to_plain

if TYPE_CHECKING:
    import optuna

FINISHED = ("COMPLETE", "PRUNED", "FAIL")
LOCK_GRACE_SECONDS = 30  # optuna's: a lock file unchanged this long is taken to be a dead process's


def journal_path(runs_dir: Path, group: str) -> Path:
    return runs_dir / ".sweep" / f"study-{group}.log"


def study_name(plan: Plan, group: str) -> str:
    return "/".join(part for part in (plan.experiment.spec.name, plan.profile, group) if part)


def quiet_optuna() -> None:
    """Optuna's own logging off (the sweep says what happens), and its experimental-feature warnings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def storage(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    quiet_optuna()
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileSymlinkLock(str(path), LOCK_GRACE_SECONDS)))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Optuna's NFS-safe symlink lock on `path` (the lock is `path.lock`), held for the block."""
    from optuna.storages.journal import JournalFileSymlinkLock

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileSymlinkLock(str(path), LOCK_GRACE_SECONDS)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def distribution(dimension: Dimension) -> optuna.distributions.BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dimension.kind == "choice":
        return CategoricalDistribution(list(dimension.choices))
    if dimension.kind == "int":
        return IntDistribution(int(dimension.low), int(dimension.high))  # type: ignore[arg-type]
    return FloatDistribution(float(dimension.low), float(dimension.high), log=dimension.kind == "log_uniform")  # type: ignore[arg-type]


def make_pruner(pruner: Pruner) -> optuna.pruners.BasePruner:
    """Epoch e is step e (the epochs trained so far), so a pruner's `warmup` and `min_resource` are epochs."""
    import optuna

    if isinstance(pruner, MedianPruner):
        return optuna.pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs)
    if isinstance(pruner, AshaPruner):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=pruner.min_epochs, reduction_factor=pruner.reduction_factor)
    return optuna.pruners.NopPruner()


def make_sampler(spec: SearchSpec, number: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler for trial `number`, seeded by (sampler_seed, number): the same values whichever process asks."""
    import optuna

    # hashed: NumPy's legacy generator, which optuna's samplers seed, gives correlated first draws for consecutive seeds
    seed = int.from_bytes(hashlib.sha256(f"{spec.sampler_seed}/{number}".encode()).digest()[:4], "little")
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.random_trials, constant_liar=True)


def protocol(plan: Plan, tuned: TunedGroup) -> dict[str, Any]:
    """What the study's trials must share to belong to one study: the search settings (all but the trial budget and
    the cases) and the tuning config itself (as a digest), so a changed experiment file never mixes its trials."""
    assert plan.search is not None
    settings = {k: v for k, v in to_plain(plan.search).items() if k not in ("trials", "cases", "dimensions")}
    middle = {d.key: d.choices[0] if d.kind == "choice" else d.low for d in plan.search.dimensions}
    config = plan.trial_run(tuned, 0, middle, {}).config
    digest = hashlib.sha256(dump_config(dataclasses.replace(config.experiment(), name="_")).encode()).hexdigest()[:16]
    return {**settings, "config": digest}


class Study:
    """A tuned group's study: its journal, the Optuna study, and its identity (`id`, recorded in every trial's run)."""

    def __init__(self, plan: Plan, tuned: TunedGroup, study: optuna.Study, path: Path):
        self.plan = plan
        self.tuned = tuned
        self.optuna = study
        self.path = path
        self.name = study.study_name
        self.id = str(study.user_attrs.get("id", ""))

    @property
    def spec(self) -> SearchSpec:
        assert self.plan.search is not None
        return self.plan.search

    @property
    def ask_lock(self) -> Path:
        return self.path.with_name(self.path.name + ".ask")

    @classmethod
    def open(cls, plan: Plan, tuned: TunedGroup, create: bool, rerun_changed: bool = False) -> Study | None:
        """The group's study; None if there is none yet and `create` is false (a dry run writes nothing).

        UsageError if it was made under another protocol (search settings or tuning config): its trials do not apply.
        With `rerun_changed`, such a journal is moved aside (`.old-<time>`) and a new study starts."""
        import optuna

        path = journal_path(plan.runs_dir, tuned.group)
        if not path.exists() and not create:
            return None
        name, wanted = study_name(plan, tuned.group), protocol(plan, tuned)
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(path.name + ".ask")):
            study = optuna.create_study(study_name=name, storage=storage(path), load_if_exists=True,
                                        direction=plan.search.direction if plan.search else "maximize")
            if "id" not in study.user_attrs:
                study.set_user_attr("id", secrets.token_hex(4))
                study.set_user_attr("protocol", wanted)
                study = optuna.load_study(study_name=name, storage=study._storage)
            elif study.user_attrs.get("protocol") != wanted:
                have = study.user_attrs.get("protocol") or {}
                differ = [f"{key}: {_short(have.get(key))} -> {_short(wanted.get(key))}" for key in {**have, **wanted}
                          if have.get(key) != wanted.get(key)]
                if not rerun_changed:
                    raise UsageError(
                        f"{path}: study {name} was made with other search settings or another tuning config "
                        f"({'; '.join(differ)}); its {len(study.trials)} trial(s) do not apply. Move it and its trial runs "
                        f"({tuned.group}-trial*) out of {plan.runs_dir}, or pass --rerun-changed to start a new study beside them")
                from dilbench.runs.rundir import utc_now

                aside = path.with_name(f"{path.name}.old-{utc_now().replace(':', '').replace('+0000', 'Z')}")
                path.rename(aside)
                return cls.open(plan, tuned, create, rerun_changed=False)
        return cls(plan, tuned, study, path)

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.optuna.get_trials(deepcopy=False)

    def ask(self) -> tuple[int, dict[str, Any]]:
        """A new trial: its number and sampled values (the caller holds `ask_lock` and has checked the budget)."""
        number = len(self.trials())
        self.optuna.sampler = make_sampler(self.spec, number)
        trial = self.optuna.ask({d.key: distribution(d) for d in self.spec.dimensions})
        assert trial.number == number, (trial.number, number)
        trial.set_user_attr("run", self.tuned.trial_name(number))
        return number, dict(trial.params)

    def tell(self, number: int, state: str, value: float | None = None, why: str = "") -> None:
        """Finish a trial (COMPLETE with its value, or PRUNED); nothing if another process finished it already."""
        import optuna

        if why:
            with contextlib.suppress(RuntimeError, ValueError):
                self.optuna._storage.set_trial_user_attr(self.trial_id(number), "outcome", why)
        self.optuna.tell(number, value if state == "COMPLETE" else None, state=optuna.trial.TrialState[state], skip_if_finished=True)

    def trial_id(self, number: int) -> int:
        return self.optuna._storage.get_trial_id_from_study_id_trial_number(self.optuna._study_id, number)

    def record(self) -> dict[str, Any]:
        """What a trial's run records of its study in meta.json's `search` block."""
        return {"study": self.name, "study_id": self.id, "journal": str(self.path)}


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
