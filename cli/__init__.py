"""The `raer` command line: thin over the Python API. JSON to stdout, logs to stderr.

Exit codes: 0 success, 1 some pairs failed or a runtime error, 2 bad input or usage.

Commands load lazily: `raer judge` never imports the statistics and plotting stack (the
`evals` extra), and `raer --help` imports no command at all. A command whose extra is not
installed says which one to install.
"""

from __future__ import annotations

import importlib

import click

from raer.cli.options import EXIT_STORE_FULL
from raer.nodes.context import SettingsError
from raer.nodes.models.offline import OfflineModelMissing
from raer.prompts import PromptError
from raer.store import DatabaseError, StoreFull, StoreUnusable, is_disk_full

# name: (module, attribute, one-line help shown by `raer --help`)
COMMANDS = {
    "retrieve": ("retrieve", "retrieve", "Ask search engines for a query set; write pairs."),
    "experiment": ("retrieve", "experiment", "Run, list, show experiments (for nightly jobs)."),
    "judge": ("judge", "judge", "Judge every (query, product) pair in a pairs file."),
    "show": ("show", "show", "Print one pair's trace: each node's prompt, output, tokens."),
    "diff": ("diff", "diff", "List pairs whose label changed between two runs."),
    "review": ("review", "review", "Work through pairs the judge escalated to people."),
    "db": ("db", "db", "Inspect the store: runs, counts, migrations."),
    "labels": ("labels", "labels", "Import human labels; export labelled pairs."),
    "baseline": ("baseline", "baseline", "Score the majority and lexical baselines."),
    "agree": ("agree", "agree", "Agreement of runs with people, with intervals."),
    "calibrate": ("calibrate", "calibrate", "Fit the escalation threshold on people's labels."),
    "cascade": ("cascade", "cascade", "Fit and measure the cheap first-stage judge."),
    "curve": ("curve", "curve", "Cost against agreement: pairwise, listwise, the cascade."),
    "ablate": ("ablate", "ablate", "Judge the same pairs two ways and compare."),
    "report": ("report", "report", "Write the HTML report of runs against people."),
    "cost": ("cost", "cost", "Calls, tokens and cost of a run against people's labelling."),
    "runs": ("runs", "runs_list", "List the store's runs: kind, model, pairs, engines, date."),
    "status": ("runs", "status", "Show a run's progress by status."),
    "retry-failed": ("runs", "retry_failed", "Redo a run's failed pairs with its settings."),
    "robustness": ("robustness", "robustness", "Measure how planted instructions move labels."),
    "evaluate": ("evaluate", "evaluate", "Measure each engine with a run's labels (nDCG, P, ERR)."),
    "compare": ("evaluate", "compare", "Compare engines query by query, with significance."),
    "trend": ("evaluate", "trend", "Measures over stored evaluations; exit 1 on a regression."),
    "meta-eval": ("evaluate", "meta_eval", "Do a label source rank engines as people do?"),
    "ppi": ("evaluate", "ppi", "Judge labels corrected by a few human ones (PPI)."),
    "export": ("trec", "export", "Write qrels, runs, Quepid or OpenSearch judgment files."),
    "import-run": ("trec", "import_run", "Build pairs from a TREC run, queries and catalogue."),
}
EXTRAS = {"sklearn": "evals", "scipy": "evals", "matplotlib": "evals", "krippendorff": "evals",
          "ir_measures": "evals", "pytrec_eval": "evals", "bm25s": "evals",
          "wordllama": "evals", "ppi_py": "evals",
          "xllamacpp": "offline", "langgraph_api": "server",
          "starlette": "review", "uvicorn": "review"}


class _Main(click.Group):
    """Loads each command when it is used. Bad input or set-up found deep inside (an unusable
    --db, settings that cannot work together, a broken prompt set, a missing offline model)
    ends with a message and exit 2, before any pair is touched."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        try:
            return getattr(importlib.import_module(f"raer.cli.{module}"), attribute)
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").partition(".")[0])
            if extra is None:
                raise
            click.echo(f"not set up: `raer {name}` needs {exc.name}: "
                       f"pip install 'raer[{extra}]'", err=True)
            ctx.exit(2)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in COMMANDS.items()])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StoreFull as exc:
            click.echo(f"stopped: {exc}", err=True)
            ctx.exit(EXIT_STORE_FULL)
        except (StoreUnusable, SettingsError, PromptError) as exc:
            click.echo(f"bad input: {exc}", err=True)
            ctx.exit(2)
        except OfflineModelMissing as exc:
            click.echo(f"not set up: {exc}", err=True)
            ctx.exit(2)
        except DatabaseError as exc:
            if is_disk_full(exc):
                click.echo(f"stopped: the store's disk is full ({exc}); free space and run "
                           f"the same command again", err=True)
                ctx.exit(EXIT_STORE_FULL)
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
