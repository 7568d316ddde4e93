"""`raer robustness`: how often planted seller text moves a judge, and how often raer's
detector catches it (evals/robustness.py builds the set)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from raer.cli.options import json_option, model_options, new_db_option
from raer.evals.report_data import OFFLINE_NOTE
from raer.evals.robustness import build_set, markdown, robustness_table
from raer.nodes.inputs import read_pairs
from raer.nodes.settings import for_pairs_file
from raer.run.local import judge_pairs
from raer.store import open_store


@click.command()
@new_db_option
@click.option("--out", "out_dir", default="robustness", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the set and robustness.md.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1))
@model_options
@json_option
def robustness(db_path: str, out_dir: str, concurrency: int, as_json: bool,
               **models: str) -> None:
    """Judge the robustness set with the given model and print the gullibility table."""
    folder = Path(out_dir)
    pairs = build_set(folder)
    settings = for_pairs_file(pairs, db_path=db_path, images_root=str(folder),
                              max_concurrency=concurrency, **models)
    asyncio.run(judge_pairs(read_pairs(pairs), settings))
    table = robustness_table(open_store(db_path), settings.run_id)
    model = settings.endpoints["judge"].model
    text = markdown(table, model)
    if settings.endpoints["judge"].offline:
        text += f"\n\n> {OFFLINE_NOTE} Its flips are noise, not gullibility."
    (folder / "robustness.md").write_text(text + "\n", encoding="utf-8")
    click.echo(json.dumps({"run_id": settings.run_id, "model": model, "table": table},
                          indent=2) if as_json else text)
