"""The `raer` command line: thin over the Python API. JSON to stdout, logs to stderr.

Exit codes: 0 success, 1 some pairs failed or a runtime error, 2 bad input or usage.
"""

from __future__ import annotations

import sqlite3

import click

from raer.graph.cli.ablate import ablate
from raer.graph.cli.agree import agree
from raer.graph.cli.baseline import baseline
from raer.graph.cli.cost import cost
from raer.graph.cli.db import db
from raer.graph.cli.judge import judge
from raer.graph.cli.labels import labels
from raer.graph.cli.report import report
from raer.graph.cli.review import review
from raer.graph.cli.robustness import robustness
from raer.graph.cli.runs import retry_failed, status
from raer.graph.cli.show import show
from raer.store import StoreUnusable


class _Main(click.Group):
    """Bad input found deep inside (an unusable --db) ends with a message and exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StoreUnusable as exc:
            click.echo(f"bad input: {exc}", err=True)
            ctx.exit(2)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            click.echo(f"bad input: the store is read-only ({exc}); choose a writable --db",
                       err=True)
            ctx.exit(2)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="raer")
def main() -> None:
    """raer: judge search relevance with multimodal LLMs, with people in the loop.

    With no endpoint configured, everything runs offline on the embedded SmolLM2-135M
    model. Its labels are at chance level: they prove the pipeline runs, not that products
    are relevant. Point --base-url/--model at an OpenAI-compatible endpoint for real labels.
    """


main.add_command(judge)
main.add_command(show)
main.add_command(review)
main.add_command(db)
main.add_command(labels)
main.add_command(baseline)
main.add_command(agree)
main.add_command(ablate)
main.add_command(report)
main.add_command(cost)
main.add_command(status)
main.add_command(retry_failed)
main.add_command(robustness)
