"""The summary index: what compare, show and the sweep read instead of parsing every run's files again.

The run directory stays the one source of truth. The index of the runs directly under a directory P
holds, per run, each part of run_parts (config, meta, metrics' reductions and epochs, ...) together
with the inode, size, modification and change time (ns) of the file it was built from. A part is used
only while its file still has exactly that signature; otherwise the file is read again (and the part
replaced at the end of the command). The change time (ctime) cannot be set back: a same-size rewrite
whose mtime was put back (cp -p, rsync -t, touch -r) is still seen. A run directory's own inode,
modification and change time say which watched files exist (creating, removing or renaming one
changes them), so a new file (metrics.jsonl after the first epoch, a tags.json) is seen without
looking for absent files one by one. A part read within RACY_NS of its file's last modification is not
kept (a same-size rewrite in the same clock tick could not be told apart), nor is one whose values
JSON cannot hold exactly (a YAML date, say). Each shard names the code that summarised its parts
(code_digest): a shard written by other code is ignored and rewritten. On a network file system a
file is opened to be looked at (fresh_stat), so the client's attribute cache cannot hide a change.

Where: `P/.dilbench-index/` when P can be written, else `$DILBENCH_CACHE/index/<hash of P's real
path>/` (default ~/.cache/dilbench), else nowhere (every call reads the files, as without an index).
Several directories or globs use one index per directory holding runs. `DILBENCH_INDEX=off` turns it
off. Deleting it is always safe: it costs one slower call.

Store: SHARDS files per index, a run's shard chosen by a hash of its directory name. Each file is
immutable: a writer builds a new one beside it and renames it into place (atomic on local file
systems and NFS alike), so readers never see a half-written file and never take a lock, concurrent
writers never wait for each other (the last rename wins; a lost update only means a run is read
from its files once more), and kill -9 at any moment leaves either the old file or the new one
(plus a temp file, removed once it is an hour old). A file that is damaged anyway (power loss
without fsync) fails its CRC and counts as absent. SQLite was the alternative: its WAL mode does not
work on network file systems (it needs shared memory between the processes, so all on one host),
and its rollback journal relies on POSIX locks that NFS implements unreliably, while runs of a Slurm
cluster are read and written from many nodes. A summary file per run directory would need writing
into run directories the reader does not own (a run has one writer) and opening 100,000 files per call.

Inside a file, values are stored by column (one column per dotted key of a part, e.g. `config:seed`,
`metrics:max:eval_acc`), each behind its own offset and CRC, so a call reads only the columns it
asks for: a default table of 100,000 runs reads a few MB, not the epochs. Numbers are packed as
float64/int64 (exact), everything else is JSON (never pickle: an index in a shared directory must
not be able to run code). A run's epochs are one opaque chunk per run (column `metrics~`), kept in a
second file beside the shard (`vN-XX.series`, same layout) with the signature of the file they came
from: a table of final metrics never opens it (a shard is about 3 KB a run, its series file 11 KB),
plots and `at:` columns use a chunk only while that signature is the shard's for the run (the two
files are replaced one after the other, so a reader may see a new one beside an old one).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import resource
import secrets
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dilbench.report.packing import MISSING, SeriesChunk, _json, decode, encode, storable
from dilbench.report.run_parts import SOURCES, Part, numeric_of

log = logging.getLogger("dilbench")

FORMAT = 3  # 2: signatures hold the change time (ctime); the header the parts code digest. 3: epochs in .series files
MAGIC = b"DBIX"
SHARDS = 256
INDEX_DIR = ".dilbench-index"
ENV = "DILBENCH_INDEX"  # off/0/no/false: no index
CACHE_ENV = "DILBENCH_CACHE"  # as the data cache (data/cache.py)
RACY_NS = 2_000_000_000  # a file changed this recently may change again within the same clock tick
STALE_TEMP_SECONDS = 3600  # temp files of killed writers older than this are removed
_PREFIX = struct.Struct("<4sIII")  # magic, format, header length, header CRC
_ROW_LIMIT = 2**31


def enabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("0", "off", "no", "false")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dilbench").expanduser()


def location(parent: Path) -> Path | None:
    """Where the index of the runs directly under `parent` lives (module docstring); None: nowhere."""
    in_place = parent / INDEX_DIR
    if os.access(parent, os.W_OK | os.X_OK) and (not in_place.exists() or os.access(in_place, os.W_OK | os.X_OK)):
        return in_place
    digest = hashlib.sha256(os.path.realpath(parent).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    cached = cache_dir() / "index" / digest
    try:
        cached.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cached if os.access(cached, os.W_OK | os.X_OK) else None


NETWORK_FS = frozenset(("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "9p", "afs",
                        "ocfs2", "gfs2", "panfs", "wekafs"))


@functools.cache
def _mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of this process's mounts, longest mount point first (Linux; else none)."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            for line in handle:
                fields = line.split()
                if " - " in line and len(fields) > 4:
                    kind = line.split(" - ", 1)[1].split()[0]
                    found.append((fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\"), kind))
    except OSError:
        return []
    return sorted(found, key=lambda mount: len(mount[0]), reverse=True)


def on_network_fs(path: Path) -> bool:
    """Whether `path` is on a network (or cluster) file system, where a stat may answer from the client's
    attribute cache for up to a minute: there a file is opened to be looked at (fresh_stat)."""
    real = os.path.realpath(path)
    for point, kind in _mounts():
        if real == point or real.startswith(point.rstrip("/") + "/"):
            return kind in NETWORK_FS or kind.startswith("fuse.") and kind != "fuse.lxcfs"
    return False


def fresh_stat(path: str) -> os.stat_result:
    """os.stat as the file is now: opening it makes an NFS client ask the server (close-to-open consistency),
    where a stat may be answered from attributes cached for up to acregmax (60 s) after another host wrote."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        return os.stat(path)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


@functools.cache
def code_digest() -> str:
    """What computed the stored parts: a digest of the modules that read and reduce a run's files (run_parts,
    packing, provenance's summary, runs/rundir's upgrades). A shard written by other code (an older checkout, a reduction added) is
    ignored and rewritten, so a change in how a file is summarised never shows a summary made the old way."""
    from dilbench.report import packing, provenance, run_parts
    from dilbench.runs import rundir

    digest = hashlib.sha256(f"{FORMAT}".encode())
    for module in (run_parts, packing, provenance, rundir):
        try:
            digest.update(Path(module.__file__ or "").read_bytes())
        except OSError:  # no source beside the bytecode: the package version stands for it
            from dilbench import __version__

            digest.update(f"{module.__name__} {__version__}".encode())
    return digest.hexdigest()[:16]


def shard_of(dirname: str) -> int:
    return zlib.crc32(dirname.encode("utf-8", "surrogateescape")) % SHARDS


def shard_file(directory: Path, number: int) -> Path:
    return directory / f"v{FORMAT}-{number:02x}.shard"


def series_file(directory: Path, number: int) -> Path:
    """The epochs of a shard's runs: a file of the same layout beside it, read only for plots and `at:` columns."""
    return directory / f"v{FORMAT}-{number:02x}.series"


class DamagedShard(Exception):
    """A shard file failed a check (CRC, length, JSON): what it holds is not used."""


class Shard:
    """The runs of one shard file: their names, and columns decoded when first asked for.

    The file stays open until the reader is closed, so every column comes from the same version of it
    even when another process replaces it meanwhile.
    """

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[str] = []
        self.row_of: dict[str, int] = {}
        self.schemas: dict[str, list[tuple[str, ...]]] = {}
        self.files: list[str] = []
        self.columns: dict[str, list[Any]] = {}
        self.layout: dict[str, tuple[str, int, int, int]] = {}  # column -> (encoding, end offset, length, crc)
        self.identity: tuple[int, int, int] | None = None  # (inode, size, mtime) of the file read
        self.damaged = False
        self.fd: int | None = None
        self._numeric: dict[int, tuple[str, ...]] = {}
        self._masks: dict[int, frozenset[str]] = {}
        self._series: dict[int, SeriesChunk | None] = {}
        self._signatures: tuple[tuple[str, ...], tuple[list[Any] | None, ...]] | None = None
        self.companion: Callable[[], Shard] | None = None  # opens the series file of this shard (DirIndex sets it)
        self._epochs: Shard | None = None

    @classmethod
    def open(cls, path: Path) -> Shard:
        """The shard in `path`; an empty one when there is none or it cannot be read."""
        shard = cls(path)
        try:
            shard.fd = os.open(path, os.O_RDONLY)
        except OSError:
            return shard
        try:
            shard._read_header()
        except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
            log.debug("index: ignoring %s (%s)", path, err)
            shard.close()
            return cls(path)
        return shard

    def _read_header(self) -> None:
        assert self.fd is not None
        st = os.fstat(self.fd)
        self.identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        magic, version, size, crc = _PREFIX.unpack(os.pread(self.fd, _PREFIX.size, 0))
        if magic != MAGIC or version != FORMAT:
            raise ValueError("not an index shard of this version")
        text = os.pread(self.fd, size, _PREFIX.size)
        if len(text) != size or zlib.crc32(text) != crc:
            raise ValueError("damaged header")
        header = json.loads(text)
        if header.get("code") != code_digest():
            raise ValueError("written by other code (its parts may be summarised differently)")
        self.rows = header["rows"]
        self.row_of = {name: i for i, name in enumerate(self.rows)}
        self.schemas = {part: [tuple(keys) for keys in lists] for part, lists in header["schemas"].items()}
        self.files = header["files"]
        columns = header["columns"]  # names, encodings, lengths, CRCs: blobs follow the header in this order
        ends = list(itertools.accumulate(columns["lengths"], initial=_PREFIX.size + size))[1:]
        self.layout = dict(zip(columns["names"], zip(columns["kinds"], ends, columns["lengths"], columns["crcs"])))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.close()

    def column(self, name: str) -> list[Any]:
        """Every row's value of a column (MISSING where a row has none, or the shard no such column);
        DamagedShard if the file fails a check."""
        found = self.columns.get(name)
        if found is None:
            place = self.layout.get(name)
            if place is None:
                found = [MISSING] * len(self.rows)
            elif self.damaged or self.fd is None:
                raise DamagedShard(f"{self.path}: column {name} unavailable")
            else:
                kind, end, length, crc = place
                try:
                    blob = os.pread(self.fd, length, end - length)
                    if len(blob) != length or zlib.crc32(blob) != crc:
                        raise ValueError("CRC or length")
                    found = decode(kind, blob, len(self.rows))
                except (OSError, ValueError, TypeError, KeyError) as err:
                    self.damaged = True
                    log.debug("index: %s: column %s damaged (%s)", self.path, name, err)
                    raise DamagedShard(f"{self.path}: column {name}: {err}") from None
            self.columns[name] = found
        return found

    def value(self, name: str, row: int) -> Any:
        return self.column(name)[row]

    def signatures(self, names: tuple[str, ...]) -> tuple[list[Any] | None, ...]:
        """These columns (the file signatures `config@`, `meta@`, ...), None for one that cannot be read; asked
        once per run with the same tuple, so the answer is kept for that tuple."""
        kept = self._signatures
        if kept is not None and kept[0] is names:
            return kept[1]
        found: list[list[Any] | None] = []
        for name in names:
            try:
                found.append(self.column(name))
            except DamagedShard:
                found.append(None)
        self._signatures = (names, tuple(found))
        return self._signatures[1]

    def entry(self, row: int) -> Entry:
        try:
            state = self.value("@dir", row)
        except DamagedShard:
            state = MISSING
        return self, row, self.state(state)

    def state(self, stored: Any) -> DirState | None:
        """A run directory's state as stored: (inode and mtime, watched files present, watched files known)."""
        if stored is MISSING or len(stored) != 4:
            return None
        return (stored[0], stored[1], stored[2]), self.present(stored[3]), self.known

    def present(self, mask: int) -> frozenset[str]:
        """The watched files a presence mask of this shard names."""
        found = self._masks.get(mask)
        if found is None:
            found = self._masks[mask] = frozenset(name for i, name in enumerate(self.files) if mask >> i & 1)
        return found

    @functools.cached_property
    def known(self) -> frozenset[str]:
        return frozenset(self.files)

    def schema(self, part: str, row: int) -> tuple[str, ...]:
        code = self.value(f"{part}#", row)
        return () if code is MISSING else self.schemas[part][code]

    def numeric(self, part: str, row: int) -> tuple[str, ...]:
        """Keys of `part`'s series with a finite number somewhere, worked out once per schema."""
        code = self.value(f"{part}#", row)
        if code is MISSING:
            return ()
        if code not in self._numeric:
            self._numeric[code] = numeric_of(self.schemas[part][code])
        return self._numeric[code]

    def series_chunk(self, part: str, row: int) -> SeriesChunk | None:
        """A run's epochs from the series file beside this shard: used only when the series file holds them for
        the same file signature as this shard's summary of the part (the two files are replaced one after the
        other, by writers that may race); DamagedShard otherwise, and the run's file is read again."""
        if row not in self._series:
            if not self.value(f"{part}%", row):  # no epoch records: no chunk
                self._series[row] = None
                return None
            if self._epochs is None:
                self._epochs = self.companion() if self.companion is not None else Shard(Path())
            epochs, at = self._epochs, self._epochs.row_of.get(self.rows[row])
            if at is None or epochs.value(f"{part}@", at) != self.value(f"{part}@", row):
                raise DamagedShard(f"{epochs.path}: no epochs of {self.rows[row]} for its summary")
            chunk = epochs.value(f"{part}~", at)
            try:
                self._series[row] = None if chunk is MISSING else SeriesChunk(chunk)
            except (ValueError, KeyError, TypeError) as err:
                epochs.damaged = True
                raise DamagedShard(f"{epochs.path}: epochs of row {at}: {err}") from None
        return self._series[row]

    def read_all(self) -> None:
        for name in self.layout:
            self.column(name)


class _InIndex:
    """What a record holds for a part the index has for exactly its file (RunRecord.part makes the
    StoredPart when a single value is asked for; columns of many runs are gathered without one)."""

    def __repr__(self) -> str:
        return "IN_INDEX"


IN_INDEX: Any = _InIndex()
DirState = tuple[tuple[int, int, int], frozenset[str], frozenset[str]]  # directory inode, mtime and ctime; files present, known
Entry = tuple["Shard", int, DirState | None]


def stored(shard: Shard, row: int, name: str, sig: tuple[int, int, int, int], reread: Callable[[], Part]) -> StoredPart | None:
    """The part `name` of a run if its shard holds it for exactly this file signature."""
    try:
        found = shard.value(f"{name}@", row)
    except DamagedShard:
        return None
    return StoredPart(shard, row, name, reread) if found == sig else None


class StoredPart:
    """A part as the index holds it: the same methods as run_parts.Part, read column by column. Should the
    shard turn out damaged, `reread` reads the part from its file and that answers from then on."""

    __slots__ = ("_fallback", "name", "reread", "row", "shard")

    def __init__(self, shard: Shard, row: int, name: str, reread: Callable[[], Part]):
        self.shard, self.row, self.name, self.reread = shard, row, name, reread
        self._fallback: Part | None = None

    def _value(self, column: str) -> Any:
        if self._fallback is None:
            try:
                return self.shard.value(column, self.row)
            except DamagedShard:
                self._fallback = self.reread()
        return _FROM_PART[column[len(self.name)]](self._fallback, column[len(self.name) + 1:])

    def get(self, key: str) -> Any:
        return self._value(f"{self.name}:{key}")

    def keys(self) -> tuple[str, ...]:
        code = self._value(f"{self.name}#")
        return code if isinstance(code, tuple) else () if code is MISSING else self.shard.schemas[self.name][code]

    def as_dict(self) -> dict[str, Any]:
        return {key: self.get(key) for key in self.keys()}

    @property
    def problems(self) -> tuple[str, ...]:
        found = self._value(f"{self.name}!")
        return () if found is MISSING else tuple(found)

    def extra(self, name: str, default: Any = None) -> Any:
        found = self._value(f"{self.name}={name}")
        return default if found is MISSING else found

    @property
    def records(self) -> int:
        found = self._value(f"{self.name}%")
        return 0 if found is MISSING else found

    def series_keys(self) -> tuple[str, ...]:
        code = self._value(f"{self.name}~#")
        return code if isinstance(code, tuple) else () if code is MISSING else self.shard.schemas[f"{self.name}~"][code]

    def numeric_keys(self) -> tuple[str, ...]:
        if self._fallback is None:
            try:
                return self.shard.numeric(self.name, self.row)
            except DamagedShard:
                self._fallback = self.reread()
        return self._fallback.numeric_keys()

    def series_of(self, key: str) -> list[Any]:
        if self._fallback is None:
            try:
                chunk = self.shard.series_chunk(self.name, self.row)
                return chunk.values(key) if chunk is not None else [MISSING] * self.records
            except DamagedShard:
                self._fallback = self.reread()
        return self._fallback.series_of(key)

    def records_list(self) -> list[dict[str, Any]]:
        if self._fallback is not None:
            return self._fallback.records_list()
        return Part(series={key: self.series_of(key) for key in self.series_keys()}, records=self.records).records_list()

    def nested(self) -> dict[str, Any]:
        text = self.extra("text")
        return Part(extras={"text": text} if text is not None else {}).nested()


# what a stored column is on a Part read from the file (StoredPart after a damaged shard)
_FROM_PART: dict[str, Callable[[Part, str], Any]] = {
    ":": lambda part, key: part.get(key),
    "#": lambda part, _: tuple(part.values),
    "!": lambda part, _: list(part.problems) if part.problems else MISSING,
    "=": lambda part, key: part.extras.get(key, MISSING),
    "%": lambda part, _: part.records,
    "~": lambda part, _: tuple(part.series),  # only `~#` is asked this way
}


# ---- the index of one directory -------------------------------------------------------------------
class DirIndex:
    """The index of the runs directly under one directory: shards loaded when a run of theirs is asked
    about, and what this command read from files, written back by save()."""

    def __init__(self, parent: Path, directory: Path | None, budget: list[int]):
        self.parent, self.directory = parent, directory
        self.network = on_network_fs(parent)  # files are opened to be looked at (fresh_stat)
        self.files = watched()  # the watched files, in the order of a presence mask
        self.shards: dict[int, Shard] = {}
        self.updates: dict[int, dict[str, dict[str, Any]]] = {}  # shard -> run -> column -> value (None: clear the part)
        self.listed: set[str] | None = None  # every run under the directory, when it was listed whole
        self.entries: dict[str, Entry] | None = None  # every run the index holds, once load_all read them
        self.written = 0  # shard files written
        self._budget = budget  # open files left for shards, shared by a reader's indexes

    def shard(self, dirname: str) -> Shard:
        return self._shard(shard_of(dirname))

    def _shard(self, number: int) -> Shard:
        shard = self.shards.get(number)
        if shard is None:
            shard = self.shards[number] = self._load(number)
        return shard

    def _load(self, number: int) -> Shard:
        if self.directory is None:
            return Shard(Path())
        shard = self._open(shard_file(self.directory, number))
        shard.companion = functools.partial(self._open, series_file(self.directory, number))
        return shard

    def _open(self, path: Path) -> Shard:
        shard = Shard.open(path)
        if shard.fd is not None:
            self._budget[0] -= 1
            if self._budget[0] <= 0:  # too many files open: keep this one's columns in memory instead
                with contextlib.suppress(DamagedShard):
                    shard.read_all()
                shard.close()
                self._budget[0] += 1
        return shard

    def lookup(self, dirname: str) -> Entry | None:
        """Where the index holds a run: (shard, row, directory state or None); None if it does not."""
        if self.entries is not None:
            return self.entries.get(dirname)
        shard = self.shard(dirname)
        row = shard.row_of.get(dirname)
        return None if row is None else shard.entry(row)

    def load_all(self) -> None:
        """Read every shard file at once, for a listing of the whole directory: lookup is then one dict away."""
        if self.entries is not None or self.directory is None:
            return
        entries: dict[str, Entry] = {}
        for number in self._numbers():
            shard = self._shard(number)
            try:
                states = shard.column("@dir")
            except DamagedShard:
                states = [MISSING] * len(shard.rows)
            for row, (dirname, state) in enumerate(zip(shard.rows, states)):
                entries[dirname] = (shard, row, shard.state(state))
        self.entries = entries

    def _numbers(self) -> list[int]:
        """The shards this index has files of."""
        prefix, suffix = f"v{FORMAT}-", ".shard"
        try:
            names = os.listdir(self.directory)  # type: ignore[arg-type]
        except OSError:
            return []
        found = []
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix):
                with contextlib.suppress(ValueError):
                    found.append(int(name[len(prefix):-len(suffix)], 16))
        return sorted(found)

    def put_dir(self, dirname: str, sig: tuple[int, int, int], files: Iterable[str]) -> None:
        present = set(files)
        mask = sum(1 << i for i, name in enumerate(self.files) if name in present)
        racy = sig[1] > time.time_ns() - RACY_NS
        self._update(dirname)["@dir"] = MISSING if racy else (*sig, mask)

    def put(self, dirname: str, name: str, sig: tuple[int, int, int, int], part: Part) -> None:
        """Keep `part`, read from a file with signature `sig`, unless that file changed too recently to tell
        a next change apart or JSON cannot hold its values exactly (then it is read again next time)."""
        keep = (sig[2] <= time.time_ns() - RACY_NS and storable(list(part.values.values()))
                and storable(list(part.extras.values())) and (part.pack().packed is not None or not part.series))
        self._update(dirname)[name] = (sig, part) if keep else None  # None: forget what the index held

    def _update(self, dirname: str) -> dict[str, Any]:
        return self.updates.setdefault(shard_of(dirname), {}).setdefault(dirname, {})

    # ---- writing
    def save(self) -> None:
        """Write the shards that changed (a new file each, renamed into place); never raises for the disk."""
        if self.directory is None:
            return
        try:
            gone = self._gone()
            numbers = set(self.updates) | set(gone)
            if numbers:
                self.directory.mkdir(parents=True, exist_ok=True)
                for number in sorted(numbers):
                    self._save_shard(number, self.updates.get(number, {}), gone.get(number, set()))
                self._remove_stale_temps()
        except OSError as err:  # a full or read-only disk: the index is only a cache
            log.debug("index: not saved in %s (%s)", self.directory, err)
        self.updates.clear()

    def _gone(self) -> dict[int, set[str]]:
        """Runs the index holds that a listing of the whole directory no longer found."""
        if self.listed is None or self.directory is None:
            return {}
        gone: dict[int, set[str]] = {}
        for number in self._numbers():
            dead = {name for name in self._shard(number).rows if name not in self.listed}
            if dead:
                gone[number] = dead
        return gone

    def _save_shard(self, number: int, updates: dict[str, dict[str, Any]], gone: set[str]) -> None:
        assert self.directory is not None
        path = shard_file(self.directory, number)
        base = self._shard(number)
        if base.identity != _identity(path):  # replaced since we read it: merge into the newer one
            base = Shard.open(path)
        try:
            base.read_all()
        except DamagedShard:
            base = Shard(path)  # start over from what this command read
        rows = [name for name in base.rows if name not in gone]
        rows += [name for name in updates if name not in base.row_of and name not in gone]
        if not rows:
            for empty in (series_file(self.directory, number), path):
                with contextlib.suppress(FileNotFoundError):
                    empty.unlink()
            return
        row_of = {name: i for i, name in enumerate(rows)}
        old = [base.row_of.get(name) for name in rows]
        schemas = {part: list(keys) for part, keys in base.schemas.items()}
        columns: dict[str, list[Any]] = {}
        for name, values in base.columns.items():
            if name == "@dir" and base.files != self.files:  # presence bits of other watched files: unknown
                continue
            if gone:
                columns[name] = [MISSING if i is None else values[i] for i in old]
            else:  # the rows kept in order, new ones after them (a copy: records may still read the base's)
                columns[name] = values + [MISSING] * (len(rows) - len(values))
        epochs: dict[str, dict[str, tuple[Any, bytes]]] = {}  # run -> part -> (file signature, chunk)
        by_part: dict[str, list[str]] = {}
        for name in columns:
            by_part.setdefault(_part_of(name), []).append(name)
        numbers = {part: {keys: i for i, keys in enumerate(known)} for part, known in schemas.items()}
        for dirname, update in updates.items():
            row = row_of.get(dirname)
            if row is None:
                continue
            for name, value in update.items():
                if name == "@dir":
                    columns.setdefault(name, [MISSING] * len(rows))[row] = value
                    continue
                if old[row] is not None:
                    for column in by_part.get(name, ()):
                        columns[column][row] = MISSING
                if value is None:
                    continue
                sig, part = value
                cells = _part_cells(name, sig, part)
                key_tuples = [(name, tuple(part.values))]
                if part.packed is not None:  # epochs: into the series file, with the signature they were read for
                    epochs.setdefault(dirname, {})[name] = (sig, part.packed)
                    key_tuples.append((f"{name}~", part.series_keys()))
                for schema, keys in key_tuples:  # a tuple of keys: stored once per shard, rows hold its number
                    known = numbers.setdefault(schema, {})
                    if keys not in known:
                        known[keys] = len(known)
                        schemas.setdefault(schema, []).append(keys)
                    cells[f"{schema}#"] = known[keys]
                for column, cell in cells.items():
                    found = columns.get(column)
                    if found is None:
                        found = columns[column] = [MISSING] * len(rows)
                        by_part.setdefault(name, []).append(column)
                    found[row] = cell
        if epochs or gone:  # first the epochs, then the summaries they belong to (either order is safe: series_chunk)
            self._save_series(number, epochs, gone)
        _write_shard(path, rows, schemas, columns, self.files)
        self.written += 1

    def _save_series(self, number: int, epochs: dict[str, dict[str, tuple[Any, bytes]]], gone: set[str]) -> None:
        """Rewrite a shard's series file with these runs' epochs (file signature and chunk per part) and without
        the runs gone. A run whose part was read again without epochs keeps its old chunk: it no longer matches
        the summary's signature, so it is never used."""
        assert self.directory is not None
        path = series_file(self.directory, number)
        base = Shard.open(path)
        try:
            base.read_all()
        except DamagedShard:
            base = Shard(path)
        base.close()
        cells: dict[str, dict[str, Any]] = {}  # run -> column -> value
        for row, dirname in enumerate(base.rows):
            if dirname not in gone and dirname not in epochs:
                cells[dirname] = {name: values[row] for name, values in base.columns.items() if values[row] is not MISSING}
        for dirname, parts in epochs.items():
            old = base.row_of.get(dirname)
            cells[dirname] = {} if old is None else {name: values[old] for name, values in base.columns.items()
                                                    if values[old] is not MISSING and _part_of(name) not in parts}
            for part, (sig, chunk) in parts.items():
                cells[dirname][f"{part}@"], cells[dirname][f"{part}~"] = tuple(sig), chunk
        rows = [dirname for dirname, found in cells.items() if found]
        if not rows:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        names = {name: None for found in cells.values() for name in found}
        columns = {name: [cells[dirname].get(name, MISSING) for dirname in rows] for name in names}
        _write_shard(path, rows, {}, columns, [])

    def _remove_stale_temps(self) -> None:
        assert self.directory is not None
        limit = time.time() - STALE_TEMP_SECONDS
        for entry in os.scandir(self.directory):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < limit:
                        os.unlink(entry.path)

    def close(self) -> None:
        for shard in self.shards.values():
            for one in (shard, shard._epochs):
                if one is not None and one.fd is not None:
                    one.close()
                    self._budget[0] += 1


def watched() -> list[str]:
    return [source.file for source in SOURCES.values()]


_PART_END = re.compile(r"[:@#!=~%]")


def _part_of(column: str) -> str:
    """The part a column belongs to: `config` for `config:seed`, `config@`, `config#`, `config!`; `metrics` for
    `metrics~`, `metrics=text`...; "" for the run's own columns (`@dir`)."""
    match = _PART_END.search(column)
    return column[: match.start()] if match else column


def _part_cells(name: str, sig: tuple[int, int, int, int], part: Part) -> dict[str, Any]:
    """The columns a part is stored in, by name, but for its tuples of keys and its epochs: its file's
    signature, values, problems, extras and number of epochs."""
    prefix = f"{name}:"
    cells = {prefix + key: value for key, value in part.values.items()}
    cells[f"{name}@"] = tuple(sig)
    if part.problems:
        cells[f"{name}!"] = list(part.problems)
    for key, value in part.extras.items():
        cells[f"{name}={key}"] = value
    if part.packed is not None:
        cells[f"{name}%"] = part.records
    return cells


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _write_shard(path: Path, rows: list[str], schemas: dict[str, list[Any]], columns: dict[str, list[Any]],
                 files: list[str]) -> None:
    """Write a shard to a temp file beside it and rename it into place (no fsync: a torn file fails its CRCs)."""
    if len(rows) >= _ROW_LIMIT:
        raise OSError("too many runs for one index shard")
    blobs, names, kinds, crcs = [], [], [], []
    for name, values in columns.items():
        if all(v is MISSING for v in values):
            continue
        kind, blob = encode(name, values)
        names.append(name)
        kinds.append(kind)
        crcs.append(zlib.crc32(blob))
        blobs.append(blob)
    layout = {"names": names, "kinds": kinds, "lengths": [len(blob) for blob in blobs], "crcs": crcs}
    header = _json({"code": code_digest(), "rows": rows, "files": files, "columns": layout,
                    "schemas": {part: [list(keys) for keys in lists] for part, lists in schemas.items()}})
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(_PREFIX.pack(MAGIC, FORMAT, len(header), zlib.crc32(header)))
            handle.write(header)
            for blob in blobs:
                handle.write(blob)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def open_files_budget() -> int:
    """How many shard files a reader may keep open: most of the soft limit on open files (raised to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
            if wanted > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
                soft = wanted
    return max(16, soft - 256)
