"""Option groups shared by subcommands. Environment variables are read here, at the edge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from raer.evals.agreement import TIE_RULES

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3  # stopped by --max-cost; pending pairs remain


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db_path", envvar="RAER_DB", default="raer.db",
                        show_default=True, type=click.Path(dir_okay=False),
                        help="SQLite file of the store (env RAER_DB).")(func)


def ties_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--ties", type=click.Choice(TIE_RULES), default="median",
                        show_default=True,
                        help="How a tie between annotators' labels is broken when no "
                             "'tiebreaker' annotator settles it.")(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON to stdout instead of a table.")(func)


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Endpoint and model per role; empty base URL means the embedded offline model."""
    options = [
        click.option("--base-url", envvar="RAER_BASE_URL", default="",
                     help="OpenAI-compatible endpoint for every role (env RAER_BASE_URL); "
                          "empty: the embedded offline model."),
        click.option("--model", envvar="RAER_MODEL", default="",
                     help="Model name for every role (env RAER_MODEL)."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
                     help="Name of the environment variable holding the API key."),
        click.option("--judge-model", default="", help="Model for the judge role."),
        click.option("--judge-base-url", default="", help="Endpoint for the judge role."),
        click.option("--vision-model", default="",
                     help='Model for packshots; "pillow" for local image analysis.'),
        click.option("--vision-base-url", default="", help="Endpoint for the vision role."),
        click.option("--requirements-model", default="", help="Model for requirements."),
        click.option("--guidelines-model", default="", help="Model for guidelines."),
        click.option("--prices", default="",
                     help='Price overrides as JSON: {"model": [in, out, cached] per 1M tokens}.'),
    ]
    for option in reversed(options):
        func = option(func)
    return func
