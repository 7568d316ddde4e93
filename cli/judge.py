"""`raer judge PAIRS`: judge a pairs file into the store, with a live progress bar."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time

import click
from click.core import ParameterSource
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from raer.cli.options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_NOTHING_JUDGED,
    images_root_option,
    json_option,
    model_options,
    new_db_option,
    say_if_new,
)
from raer.evals.usage import run_usage, usage_by_node
from raer.nodes.context import MAX_PRODUCTS_PER_CALL
from raer.nodes.inputs import ColumnsError, InputError, parse_columns, read_pairs
from raer.nodes.review_policy import PolicyError, read_policy
from raer.nodes.settings import for_pairs_file
from raer.run.plan import prepare_run
from raer.run.processes import default_workers
from raer.run.ray import RayUnavailable
from raer.store.scale import LABELS

OFFLINE_WARNING = ("Offline model (SmolLM2-135M): its labels are at chance level. They prove "
                   "the pipeline runs; they do not say whether products are relevant.")


async def _ask_person(item: dict) -> str:
    console = Console(stderr=True)
    console.rule(f"[bold]Review: {item['query']}[/] → {item['title']}")
    console.print(f"judge said [bold]{item['label']}[/] (confidence {item['confidence']})")
    console.print(f"reasons: {'; '.join(item['reasons'])}")
    console.print(f"reasoning: {item['reasoning']}")
    choice = await asyncio.to_thread(
        click.prompt, "your label", type=click.Choice(list(LABELS)), err=True)
    return choice


@click.command()
@click.argument("pairs", type=click.Path(dir_okay=False))
@new_db_option
@model_options
@click.option("--run", "run_name", default="",
              help="Name the run; by default a run is named by its settings' hash, so a "
                   "rerun with the same settings continues the same run.")
@click.option("--guidelines", "guideline_mode", type=click.Choice(["specific", "generic"]),
              default="specific", show_default=True, help="Query-specific or generic rubric.")
@click.option("--review-below", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Send judgments with lower confidence to a person.")
@click.option("--review-policy", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A review-policy file from `raer calibrate` (sets --review-below).")
@click.option("--learn-from-reviews", is_flag=True,
              help="People's resolved reviews of a query become examples in its guidelines "
                   "(only those queries' pairs are judged again); measure it first with "
                   "`raer ablate --vary feedback`.")
@click.option("--interactive", is_flag=True,
              help="Ask for a label on the terminal when a judgment is escalated.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1),
              help="Model calls in flight at once.")
@click.option("--query-concurrency", default=4, show_default=True, type=click.IntRange(1),
              help="Queries judged at once.")
@click.option("--prompt-set", default="default",
              help='Folder of prompt files to use instead of the packaged ones.')
@click.option("--products-per-call", default=1, show_default=True,
              type=click.IntRange(1, MAX_PRODUCTS_PER_CALL),
              help="Judge this many of a query's products in one call (listwise; each "
                   "product is still cached on its own); 1: one call per pair.")
@click.option("--list-seed", default=0, show_default=True, type=int,
              help="Listwise: seed of the order a query's products are listed in.")
@click.option("--context-tokens", default=0, show_default=True, type=click.IntRange(0),
              help="Listwise: the judge model's context window; chunks are cut to fit it. "
                   "0: the offline model's, else the model table's (prices.toml).")
@click.option("--first-stage", type=click.Path(dir_okay=False), default="",
              help="A first-stage model from `raer cascade fit`: pairs it is sure of are "
                   "labelled with no model call; the rest are judged.")
@click.option("--rpm", "requests_per_minute", default=0.0, type=click.FloatRange(0),
              help="Requests per minute per endpoint (0: no limit).")
@click.option("--tpm", "tokens_per_minute", default=0.0, type=click.FloatRange(0),
              help="Tokens per minute per endpoint (0: no limit).")
@click.option("--max-cost", default=0.0, type=click.FloatRange(0),
              help="Stop cleanly before the run's estimated cost passes this many USD.")
@click.option("--batch", is_flag=True,
              help="Send requests through the OpenAI Batch API (half price; results take "
                   "minutes to hours; the run waits and polls).")
@images_root_option
@click.option("--image-allow-hosts", default="",
              help="Comma-separated hosts or networks (CIDR) on a private network that "
                   "packshot URLs may reach, e.g. your own CDN; others are refused.")
@click.option("--request-timeout", default=120.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds a model request may take before it is retried.")
@click.option("--max-retries", default=3, show_default=True, type=click.IntRange(0),
              help="Transport retries per model request (429, 5xx, timeouts).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0),
              help="Processes judging shards of the queries; 0: the machine's cores (1 for "
                   "under 500 pairs or the embedded offline model). Limits are shared, not "
                   "multiplied.")
@click.option("--ray", "ray_address", default="",
              help="Run shards of queries as tasks on the Ray cluster at this address "
                   "(host:port; `auto` for the local one); needs raer[ray].")
@click.option("--ray-insecure", is_flag=True,
              help="Connect --ray to a cluster without Ray's token authentication (only "
                   "for a cluster secured otherwise: an open cluster runs anyone's code).")
@click.option("--shard-pairs", default=100, show_default=True, type=click.IntRange(1),
              help="With --ray: about this many pairs per task (whole queries).")
@click.option("--min-free-mb", default=64.0, show_default=True, type=click.FloatRange(0),
              help="Stop, before paying for a call, when the store's disk has less free "
                   "space (its answer could not be stored); 0: no check.")
@click.option("--columns", default="",
              help="Rename a file's own columns to raer's fields, as `raer labels import` "
                   "does, e.g. query=search_term,product_id=sku,title=name.")
@click.option("--dry-run", is_flag=True,
              help="Estimate calls, tokens and cost; send nothing, write nothing.")
@click.option("--validate", is_flag=True,
              help="Check PAIRS without any call and without writing: input errors, "
                   "products stored with other content, local packshots that cannot be "
                   "read; exit 2 on a problem that stops a run.")
@json_option
def judge(pairs: str, db_path: str, run_name: str, guideline_mode: str, review_below: float,
          review_policy: str | None, learn_from_reviews: bool, interactive: bool, concurrency: int,
          query_concurrency: int, prompt_set: str, products_per_call: int, list_seed: int,
          context_tokens: int, first_stage: str, requests_per_minute: float,
          tokens_per_minute: float, max_cost: float,
          batch: bool, images_root: str | None, image_allow_hosts: str, request_timeout: float,
          max_retries: int, workers: int, ray_address: str, ray_insecure: bool,
          shard_pairs: int, dry_run: bool, validate: bool, min_free_mb: float, columns: str,
          as_json: bool,
          **models: str) -> None:
    """Judge every (query, product) pair in PAIRS (.jsonl, .csv or .parquet)."""
    err = Console(stderr=True)
    try:
        records = read_pairs(pairs, parse_columns(columns))
    except ColumnsError as exc:
        click.echo(f"bad input: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if review_policy:
        if (click.get_current_context().get_parameter_source("review_below")
                is not ParameterSource.DEFAULT):
            raise click.UsageError("give --review-below or --review-policy, not both")
        try:
            review_below = read_policy(review_policy)
        except PolicyError as exc:
            click.echo(f"bad input: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    settings = for_pairs_file(pairs, db_path=db_path, images_root=images_root,
                       run_name=run_name, guideline_mode=guideline_mode,
                       review_below=review_below, learn_from_reviews=learn_from_reviews,
                       max_concurrency=concurrency,
                       query_concurrency=query_concurrency, prompt_set=prompt_set,
                       products_per_call=products_per_call, list_seed=list_seed,
                       context_tokens=context_tokens, first_stage=first_stage,
                       review_mode="interactive" if interactive else "queue",
                       requests_per_minute=requests_per_minute,
                       tokens_per_minute=tokens_per_minute, max_cost=max_cost, batch=batch,
                       image_allow_hosts=image_allow_hosts, request_timeout=request_timeout,
                       max_retries=max_retries, min_free_mb=min_free_mb, **models)
    if validate:
        _validate(records, settings, pairs, as_json)
        return
    if dry_run:
        from raer.run.estimate import estimate

        try:  # the run engine's plan, written nowhere: a changed product is refused here too
            result = estimate(records, settings)
        except InputError as exc:
            click.echo(f"bad input:\n{exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        _print_estimate(result, as_json)
        return
    if ray_address:
        from raer.run.ray import preflight

        try:  # before the store is opened: a refused cluster writes nothing
            preflight(settings, ray_address, ray_insecure)
        except RayUnavailable as exc:
            click.echo(f"refused: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    say_if_new(db_path)
    try:  # the run engine's plan: conflicts refused, finished pairs skipped, the rest pending
        plan = prepare_run(records, settings, mark=not ray_address)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    run_id, store = plan.run_id, plan.store
    if not plan.finished and settings.endpoints["judge"].offline:
        err.print(f"[yellow]{OFFLINE_WARNING}[/]")
    if workers == 0:
        workers = default_workers(settings, plan.pairs_to_judge)
    if workers > 1 and (interactive or batch):
        err.print(f"[yellow]{'--interactive' if interactive else '--batch'} runs in one "
                  "process: --workers 1[/]")
        workers = 1
    before = _counts(store, run_id)
    finished_before = len(store.finished_pairs(run_id))
    started = time.monotonic()

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                  console=err, disable=as_json or interactive) as bar:
        task = bar.add_task(f"judging {run_id}" + (f" ({workers} workers)" if workers > 1
                                                   else ""), total=len(records), stats="")

        # Off a terminal (make, CI, a log file) rich draws no live bar: a plain line at
        # most every PLAIN_EVERY seconds says the run is alive and where it stands.
        plain = not as_json and not interactive and not err.is_terminal
        last_line = [time.monotonic()]
        if plain:
            click.echo(f"judging {len(records)} pairs into run {run_id} "
                       f"({finished_before} finished before)", err=True)

        def show(done: int, calls: int, tokens: int, cost: float, escalated: int,
                 failed: int) -> None:
            stats = (f"calls {calls} · tokens {tokens:,} · ${cost:.4f} · review {escalated} · "
                     f"failed {failed}")
            bar.update(task, completed=done, stats=stats)
            now = time.monotonic()
            if plain and (now - last_line[0] >= PLAIN_EVERY or done == len(records)):
                last_line[0] = now
                click.echo(f"judged {done} of {len(records)} pairs · {stats} · "
                           f"{now - started:.0f} s", err=True)

        def on_progress(progress) -> None:
            tally = store.tally(run_id)  # in memory: no aggregate query per finished pair
            show(progress.done + progress.skipped, tally.calls - before["calls"],
                 tally.tokens, tally.cost_usd, progress.escalated, progress.failed)

        def on_worker_progress(p) -> None:
            show(p.done + p.skipped, p.calls, p.tokens, p.cost_usd, p.escalated, p.failed)

        try:
            restarts, cluster = 0, None
            if plan.finished:  # answered from the store: no graph, no model client
                rows = plan.rows()
            elif ray_address:
                from raer.run.ray import judge_on_ray

                def on_ray_progress(r) -> None:
                    bar.update(task, completed=r.done, stats=(
                        f"shards merged {r.merged} of {r.shards} · failed {r.failed}"))

                rows, cluster = judge_on_ray(plan, ray_address, shard_pairs,
                                             on_progress=on_ray_progress,
                                             insecure=ray_insecure)
            elif workers > 1:
                from raer.run.processes import judge_with_workers

                rows, worker_progress = judge_with_workers(plan, workers, on_worker_progress)
                restarts = worker_progress.restarts
            else:
                from raer.run.local import judge_plan

                asyncio.run(judge_plan(plan, on_progress=on_progress,
                                       reviewer=_ask_person if interactive else None))
                rows = plan.rows()
        except InputError as exc:
            bar.stop()
            click.echo(f"bad input:\n{exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except RayUnavailable as exc:
            bar.stop()
            click.echo(f"not set up: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        bar.update(task, completed=len(records))

    after = _counts(store, run_id)
    stats = run_usage(store, run_id)
    summary = {
        "run_id": run_id, "db": str(db_path), "pairs": len(rows),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in
                     ("done", "escalated", "failed", "pending")},
        "labels": {label: sum(r["label"] == label for r in rows)
                   for label in (*LABELS, "cannot judge")},
        "model_calls_this_invocation": after["calls"] - before["calls"],
        "first_stage_kept": plan.first_stage_kept,
        # judged now without a judge call: the same judge input was answered before (another
        # engine listing the product for the query, an earlier run with the same settings)
        "labels_reused": max(0, len(store.finished_pairs(run_id)) - finished_before
                             - (after["judge_answers"] - before["judge_answers"])),
        "workers": 0 if cluster else workers, "worker_restarts": restarts,
        "ray": dataclasses.asdict(cluster) if cluster else None,
        "run_totals": stats, "by_node": usage_by_node(store, run_id),
        "seconds": round(time.monotonic() - started, 1),
        "offline_model": settings.endpoints["judge"].offline,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        err.print(f"run {run_id}: {summary['statuses']} · labels {summary['labels']}")
        for node in summary["by_node"]:
            err.print(f"  {node['node']:<22} {node['model']:<28} calls {node['calls']:>4} · "
                      f"tokens {node['tokens']:>7,} · failed {node['failed_calls']} · "
                      f"model time {node['model_seconds']} s")
        err.print(f"labels reused without a call: {summary['labels_reused']} · "
                  f"model calls this invocation: {summary['model_calls_this_invocation']} · "
                  f"run total {stats['calls']} calls, {stats['tokens']:,} tokens, "
                  f"${stats['cost_usd']:.4f} · {summary['seconds']} s")
        if stats["unpriced_calls"]:
            err.print(f"[yellow]{stats['unpriced_calls']} calls used models missing from the "
                      "price table: their cost is unknown, not zero (see --prices).[/]")
        if summary["offline_model"]:
            err.print(f"[yellow]{OFFLINE_WARNING}[/]")
        err.print(f"inspect: raer show --db {db_path} <judgment id> · "
                  f"raer review list --db {db_path}")
    judged = summary["statuses"]["done"] + summary["statuses"]["escalated"]
    if summary["statuses"]["failed"] and not judged:
        reasons = sorted({(r["error"] or "")[:160] for r in rows if r["status"] == "failed"})
        left = summary["statuses"]["pending"]
        err.print(f"[bold red]nothing was judged: {summary['statuses']['failed']} pairs "
                  f"failed[/]" + (f" and the run stopped early, {left} pairs left pending"
                                  if left else "")
                  + ". Reasons: " + "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else "")
                  + f". See `raer show --db {db_path} <judgment id>`; rerun the same command "
                  "to retry them.")
        sys.exit(EXIT_NOTHING_JUDGED)
    if summary["statuses"]["pending"]:
        err.print(f"[yellow]stopped before the budget of ${max_cost:.2f} was passed: "
                  f"{summary['statuses']['pending']} pairs still pending (rerun with a larger "
                  "--max-cost to finish).[/]")
        sys.exit(EXIT_INCOMPLETE)
    if summary["statuses"]["failed"]:
        sys.exit(EXIT_FAILED)


PLAIN_EVERY = 10.0


def _validate(records: list, settings, pairs_path: str, as_json: bool) -> None:
    """`--validate`: the run engine's plan, written nowhere, and every local packshot read
    as the run would read it. `--max-cost 0` could not serve: it means no limit, and the
    embedded model costs nothing anyway."""
    from raer.nodes.image_source import image_kind
    from raer.nodes.images import ImagePolicy, ImageUnavailable, read_local

    try:
        plan = prepare_run(records, settings, write=False)
    except InputError as exc:
        click.echo(f"bad input:\n{exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    policy = ImagePolicy.of(settings)
    kinds: dict[str, int] = {}
    unusable: list[dict[str, str]] = []
    for pair in {p.product_id: p for p in records}.values():
        kind = image_kind(pair.image)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "file":
            try:
                read_local(pair.image, policy)
            except ImageUnavailable as exc:
                unusable.append({"product_id": pair.product_id, "reason": str(exc)})
    result = {"pairs": len(records), "queries": len(plan.groups),
              "pairs_to_judge": plan.pairs_to_judge, "finished_before": plan.finished_before,
              "products": len({p.product_id for p in records}),
              "images": {"local": kinds.get("file", 0), "remote (not fetched)":
                         kinds.get("web", 0) + kinds.get("url", 0),
                         "data URLs": kinds.get("data", 0), "none": kinds.get("none", 0),
                         "unusable": unusable}}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{pairs_path}: {result['pairs']} pairs, {result['queries']} queries, "
                   f"{result['products']} products; {result['pairs_to_judge']} to judge "
                   f"({result['finished_before']} finished before)")
        for item in unusable:
            click.echo(f"  packshot of {item['product_id']}: {item['reason']} (judged on "
                       f"text alone)")
    click.echo("valid: nothing was sent and nothing written", err=True)


def _counts(store, run_id: str) -> dict[str, int]:
    """Calls recorded for the run and valid judge answers among them (two indexed counts,
    read before and after: the work may happen in other processes)."""
    return store.call_counts(run_id)


def _print_estimate(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"dry run for {result['run_id']}: {result['pairs_to_judge']} of "
               f"{result['pairs']} pairs to judge · {result['calls']} model calls · "
               f"~{result['input_tokens']:,} input + ~{result['output_tokens']:,} output tokens "
               f"· ~${result['cost_usd']:.4f}")
    for row in result["by_node"]:
        cost = "unpriced" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}"
        click.echo(f"  {row['node']:<22} {row['model']:<28} calls {row['calls']:>6} · "
                   f"in {row['input_tokens']:>9,} · out {row['output_tokens']:>8,} · {cost}")
    if result["unpriced_models"]:
        click.echo(f"no price for {', '.join(result['unpriced_models'])}: use --prices")
    prefix = result["judge_prefix"]
    if prefix["cache_minimum"]:
        verdict = ("cached after a query's first product" if prefix["cached"] else
                   "this one is shorter, so every judge call pays the whole prompt")
        click.echo(f"judge prompt prefix shared by a query's products: ~{prefix['tokens']:,} "
                   f"tokens; {prefix['model']} caches prefixes of "
                   f"{prefix['cache_minimum']:,} tokens or more: {verdict}")
        padding = prefix.get("padding")
        if padding:
            click.echo(f"  with {prefix['calls_per_query']} judge calls a query, lengthening "
                       f"it to {prefix['cache_minimum']:,} tokens would "
                       + ("pay" if padding["pays"] else "not pay")
                       + f": ${padding['usd_per_query_padded']:.6f} a query instead of "
                         f"${padding['usd_per_query_as_is']:.6f} (if the cache holds)")
