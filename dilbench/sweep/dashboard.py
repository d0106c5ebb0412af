"""`dilbench sweep EXPERIMENT --dashboard`: optuna-dashboard on a profile's search studies, live, until Ctrl-C.

Each tuned case keeps its study in a journal file of its own (sweep/study.py) and optuna-dashboard serves one
storage, so each case gets a server of its own, on consecutive free ports from 8080 (optuna-dashboard's) up.
They read the journals as the sweep appends to them: open it while the sweep runs, and a reload shows the
new trials (optuna-dashboard re-reads a study's trials at most every 2 s, 10 s past 500 trials). Bound to
127.0.0.1 like `dilbench tensorboard`: trials name configs and paths. optuna-dashboard is an optional extra
(`pip install 'dilbench[dashboard]'`); nothing else imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dilbench.errors import UsageError
from dilbench.sweep.plan import Plan
from dilbench.sweep.study import journal_path, storage, study_name

HOST = "127.0.0.1"
FIRST_PORT = 8080
INSTALL = "pip install 'dilbench[dashboard]' (or: pip install optuna-dashboard)"


@dataclass(frozen=True)
class Board:
    group: str  # the tuned case, e.g. `a`
    study: str  # its study's name in the journal
    url: str


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request is noise here
        pass


def journals(plan: Plan) -> list[tuple[str, Path]]:
    """(tuned case, journal file) of each study the profile's search has started; UsageError when it has none."""
    where = f"profile {plan.profile}" if plan.profile else "the base setup"
    if plan.search is None or not plan.tuned:
        raise UsageError(f"{where} has no search (a `search:` section); --dashboard shows a search's studies")
    found = [(tuned.group, path) for tuned in plan.tuned if (path := journal_path(plan.runs_dir, tuned.group)).is_file()]
    if not found:
        raise UsageError(f"no study of {where} yet (in {plan.runs_dir / '.sweep'}); start the sweep, then open the "
                         f"dashboard beside it")
    return found


def _free_server(app: Any, port: int) -> WSGIServer:
    """A server of `app` on the first port from `port` up that is free."""
    for candidate in range(port, port + 100):
        try:
            return make_server(HOST, candidate, app, handler_class=_Quiet)
        except OSError:
            continue
    raise UsageError(f"no free port from {port} to {port + 99} on {HOST}; free one, then try again")


@contextmanager
def dashboards(plan: Plan, first_port: int = FIRST_PORT) -> Iterator[list[Board]]:
    """Serve each started study of the profile's search in a background thread while the block runs."""
    found = journals(plan)
    try:
        import optuna_dashboard
    except ImportError:
        raise UsageError(f"--dashboard needs optuna-dashboard: {INSTALL}") from None
    servers: list[WSGIServer] = []
    boards = []
    try:
        for group, path in found:
            server = _free_server(optuna_dashboard.wsgi(storage(path)), first_port)
            first_port = server.server_port + 1
            servers.append(server)
            threading.Thread(target=server.serve_forever, name=f"dashboard-{group}", daemon=True).start()
            boards.append(Board(group, study_name(plan, group), f"http://{HOST}:{server.server_port}/dashboard/"))
        yield boards
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
