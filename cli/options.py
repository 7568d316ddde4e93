"""Option groups shared by subcommands. Environment variables are read here, at the edge."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from raer.nodes.context import OUTPUT_MODES, Context
from raer.nodes.schemas import TIE_RULES

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3  # stopped by --max-cost; pending pairs remain
EXIT_NOTHING_JUDGED = 4  # every pair failed: nothing was judged
EXIT_STORE_FULL = 5  # the store's disk is full: stopped at once, pending pairs remain


def _existing_store(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A read command on a store that does not exist would create an empty one and print
    empty tables with exit 0: a mistyped --db looked like "no results"."""
    if value and not Path(value).exists():
        click.echo(f"no store at {value} (a mistyped --db or RAER_DB?); `raer judge` and "
                   f"`raer labels import` create one", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    return value


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--db for commands that read a store: it must exist."""
    return click.option("--db", "db_path", envvar="RAER_DB", default="raer.db",
                        show_default=True, type=click.Path(dir_okay=False),
                        callback=_existing_store,
                        help="SQLite file of the store (env RAER_DB); must exist.")(func)


def new_db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--db for commands that may create the store (judge, labels import, robustness,
    ablate): they say so when they do."""
    return click.option("--db", "db_path", envvar="RAER_DB", default="raer.db",
                        show_default=True, type=click.Path(dir_okay=False),
                        help="SQLite file of the store (env RAER_DB); created if "
                             "missing.")(func)


def say_if_new(db_path: str) -> None:
    if not Path(db_path).exists():
        click.echo(f"creating a new store at {db_path}", err=True)


def ties_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--ties", type=click.Choice(TIE_RULES), default="median",
                        show_default=True,
                        help="How a tie between annotators' labels is broken when no "
                             "'tiebreaker' annotator settles it.")(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON to stdout instead of a table.")(func)


MODEL_FIELDS = ("base_url", "model", "api_key_env", "judge_model", "judge_base_url",
                "vision_model", "vision_base_url", "requirements_model",
                "requirements_base_url", "guidelines_model", "guidelines_base_url",
                "output_mode", "prices")
ENVVARS = {"base_url": "RAER_BASE_URL", "model": "RAER_MODEL"}


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Endpoint and model per role, generated from `Context`'s fields: one table (the
    dataclass, its defaults and descriptions) for the CLI, Studio and the Python API."""
    fields = {f.name: f for f in dataclasses.fields(Context)}
    for name in reversed(MODEL_FIELDS):
        spec = fields[name]
        env = ENVVARS.get(name)
        extra: dict[str, Any] = {"envvar": env} if env else {}
        if name == "output_mode":
            extra["type"] = click.Choice(OUTPUT_MODES)
        func = click.option(f"--{name.replace('_', '-')}", name, default=spec.default,
                            show_default=bool(spec.default),
                            help=spec.metadata["description"]
                            + (f" (env {env})" if env else ""), **extra)(func)
    return func


def resolve_run(store, run_id: str) -> str:
    """The run a user means: "latest" (the store's most recent judging run), an exact id,
    or a unique prefix of one ("run-3f2" for "run-3f2a91c04e7b"). Unknown or ambiguous ids
    end with exit 2 and the candidates (`raer runs` lists them all)."""
    if run_id == "latest":
        latest = store.latest_judging_run()
        if latest is None:
            click.echo(f"no judging run in {store.path}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        return latest
    if store.run_row(run_id) is not None:
        return run_id
    ids = store.run_ids()
    matches = [i for i in ids if i.startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        click.echo(f"run {run_id!r} is ambiguous in {store.path}: {', '.join(matches[:10])}",
                   err=True)
    else:
        known = ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "") if ids else "none"
        click.echo(f"no run {run_id!r} in {store.path}; runs there: {known} (see `raer runs`)",
                   err=True)
    sys.exit(EXIT_BAD_INPUT)


images_root_option = click.option(
    "--images-root", type=click.Path(file_okay=False), default=None,
    help="Folder local packshots must lie in (default: the pairs file's folder); paths "
         "outside it are refused.")
