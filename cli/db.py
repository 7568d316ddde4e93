"""`raer db`: where the store is, and what it holds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from raer.cli.options import db_option, new_db_option
from raer.store import open_store


@click.group()
def db() -> None:
    """The SQLite store (browse it with `datasette FILE`)."""


@db.command("path")
@new_db_option
def path(db_path: str) -> None:
    """Print the absolute path of the store."""
    click.echo(str(Path(db_path).resolve()))


@db.command("counts")
@db_option
def counts(db_path: str) -> None:
    """Rows per table, as JSON."""
    store = open_store(db_path)
    click.echo(json.dumps(store.table_counts(), indent=2))
