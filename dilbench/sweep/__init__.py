"""Experiments: many runs of one base config (cases x grid, under a profile), re-runnable, with a results page.

    experiment.py  the experiment file's schema and loading (errors with file:line)
    plan.py        cases x grid + profile -> named runs with validated configs
    existing.py    what earlier sweeps left: skip, resume, start, busy or changed (locks: dilbench/runs/lock.py)
    execute.py     the runs as `dilbench train` child processes, N at a time, Ctrl-C included
    verdict.py     the statistics that judge published claims against the seed noise: Welch + Holm
    report.py      RESULTS.md and curves.png from the run directories
    command.py     `dilbench sweep`: the above in order

No module here imports TensorFlow: the training happens in the child processes.
"""
