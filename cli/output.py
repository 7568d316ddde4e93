"""Writing a command's output file without ever destroying an input or a store.

`raer export … --out store.db` used to replace the store with qrels text (exit 0), and
`import-run --out` could overwrite its own run file. Every `--out` file now goes through
`write_output`:
- it refuses a path that is one of the command's inputs, the store (or its -wal/-shm
  files), any SQLite file, or an existing file unless `--force` is given;
- it refuses a folder that does not exist (naming it) instead of a traceback;
- it refuses an empty result: an empty file with exit 0 reads as "no labels" downstream;
- it writes a temporary file beside the target and renames it over the target at the end,
  so an interrupted write leaves the old file (or none), never half a file.
Each refusal is exit 2 with the reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from raer.cli.options import EXIT_BAD_INPUT

SQLITE_HEADER = b"SQLite format 3\x00"


def force_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--force", is_flag=True,
                        help="Replace an existing --out file (never an input or a store).")(func)


class OutputRefused(ValueError):
    """The output path would destroy something, or there is nothing to write."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str, inputs: Iterable[str] = (), force: bool = False) -> Path:
    """The resolved output path, or OutputRefused saying why it may not be written."""
    target = Path(path)
    if target.is_dir():
        raise OutputRefused(f"--out {path} is a folder")
    if not target.parent.resolve().is_dir():
        raise OutputRefused(f"--out {path}: the folder {target.parent} does not exist")
    for given in inputs:
        if not given:
            continue
        for candidate in (Path(given), Path(f"{given}-wal"), Path(f"{given}-shm")):
            if _same(target, candidate) or target.resolve() == candidate.resolve():
                raise OutputRefused(f"--out {path} is an input of this command ({given}); "
                                    f"write somewhere else")
    if target.exists():
        try:
            with target.open("rb") as handle:
                header = handle.read(16)
        except OSError as exc:
            raise OutputRefused(f"--out {path}: {exc.strerror}") from exc
        if header == SQLITE_HEADER:
            raise OutputRefused(f"--out {path} is an SQLite database (a store?); raer never "
                                f"overwrites one")
        if not force:
            raise OutputRefused(f"--out {path} exists; --force replaces it")
    return target


def write_output(path: str, text: str, inputs: Iterable[str] = (), force: bool = False,
                 what: str = "rows") -> None:
    """Write `text` to `path` ("-": stdout) as the module docstring says; exits 2 with the
    reason when refused."""
    if not text.strip():
        click.echo(f"nothing to write: no {what}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if path == "-":
        click.echo(text, nl=False)
        return
    try:
        target = check_output(path, inputs, force)
    except OutputRefused as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
