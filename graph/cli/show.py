"""`raer show`: one pair's full trace, the tool for debugging prompts."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax

from raer.graph.cli.options import EXIT_BAD_INPUT, db_option, json_option
from raer.graph.trace import find_judgment, pair_trace
from raer.store import open_store


def _message_text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        content = "\n".join(part.get("text") or str(part.get("image_url", ""))
                            for part in content)
    return f"[{message['role']}]\n{content}"


def _print_trace(trace: dict) -> None:
    out = Console()
    j, q, p = trace["judgment"], trace["query"], trace["product"]
    out.rule(f"[bold]{q['text']}[/] ({q['language']}) → {p['title']} [{p['id']}]")
    out.print(f"judgment {j['id']} · run {j['run_id']} · engine {j['engine'] or '-'} · "
              f"status [bold]{j['status']}[/] · label [bold]{j['label']}[/] · "
              f"confidence {j['confidence']} · brand check {j['brand_check']}")
    if j["error"]:
        out.print(f"[red]error:[/] {j['error']}")
    if j["image_note"]:
        out.print(f"[yellow]image:[/] {j['image_note']}")
    models = trace["run"]["settings"].get("models", {})
    out.print(f"models: {models}")
    for step in trace["steps"]:
        out.rule(step["node"])
        if not step["calls"]:
            artefact = step["artefact"]
            out.print("no model call" + (f" (model {artefact['model']})" if artefact else
                                         " (skipped)"))
            continue
        for call in step["calls"]:
            cached = "" if call["run_id"] == j["run_id"] else f" (cached from {call['run_id']})"
            out.print(f"call #{call['id']} attempt {call['attempt']} · model {call['model']} · "
                      f"prompt {call['prompt_hash']} · tokens in {call['input_tokens']} "
                      f"(cached {call['cached_tokens']}) out {call['output_tokens']} · "
                      f"{call['latency_ms']:.0f} ms · cost {call['cost_usd']}{cached}")
            prompt = "\n\n".join(_message_text(m) for m in call["messages"])
            out.print(Panel(prompt, title="prompt", border_style="blue"))
            out.print(Panel(call["raw_output"] or "(empty)", title="raw output",
                            border_style="magenta"))
            if call["parsed"] is not None:
                out.print(Syntax(json.dumps(call["parsed"], indent=2, ensure_ascii=False),
                                 "json", word_wrap=True))
            if call["error"]:
                out.print(f"[red]error:[/] {call['error']}")
    if trace["review"]:
        r = trace["review"]
        out.rule("review")
        out.print(f"status {r['status']} · reasons {r['reasons']} · human label "
                  f"{r['human_label']} · reviewer {r['reviewer']}")


@click.command()
@click.argument("judgment_id", required=False)
@db_option
@click.option("--query", default="", help="Find the pair by query text …")
@click.option("--product", "product_id", default="", help="… and product id.")
@click.option("--run", "run_id", default="", help="Restrict to one run.")
@click.option("--engine", default=None, help="Restrict to one engine.")
@json_option
def show(judgment_id: str | None, db_path: str, query: str, product_id: str, run_id: str,
         engine: str | None, as_json: bool) -> None:
    """Print one pair's trace: each node's prompt, raw output, parsed result, tokens, time."""
    if not judgment_id and not (query and product_id):
        raise click.UsageError("give a JUDGMENT_ID, or --query and --product")
    store = open_store(db_path)
    try:
        judgment = find_judgment(store, judgment_id, query=query, product_id=product_id,
                                 run_id=run_id, engine=engine)
    except LookupError:
        click.echo(f"no judgment found in {db_path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    trace = pair_trace(store, judgment)
    if as_json:
        click.echo(json.dumps(trace, indent=2, ensure_ascii=False, default=str))
    else:
        _print_trace(trace)
