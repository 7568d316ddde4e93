"""`raer show`: one pair's full trace, the tool for debugging prompts."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from raer.cli.options import EXIT_BAD_INPUT, db_option, json_option, resolve_run
from raer.nodes.models.first_stage import MODEL_NAME as FIRST_STAGE
from raer.store import open_store
from raer.store.trace import find_judgment, pair_trace


def _message_text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        content = "\n".join(part.get("text") or str(part.get("image_url", ""))
                            for part in content)
    calls = "".join(f"\n(tool call) {c}" for c in message.get("tool_calls") or [])
    return f"[{message['role']}]\n{content}{calls}"


def _print_trace(trace: dict) -> None:
    """Everything from the store is data: printed verbatim (no rich markup), so a title
    holding `[red]` or `[/men]` shows as written."""
    out = Console(highlight=False)

    def say(text: str, style: str = "") -> None:
        out.print(Text(text, style=style))

    j, q, p = trace["judgment"], trace["query"], trace["product"]
    out.rule(Text(f"{q['text']} ({q['language']}) → {p['title']} [{p['id']}]"))
    say(f"judgment {j['id']} · run {j['run_id']} · engine {j['engine'] or '-'} · "
        f"status {j['status']} · label {j['label']} · confidence {j['confidence']} · "
        f"brand check {j['brand_check']}", "bold")
    if j["error"]:
        say(f"error: {j['error']}", "red")
    if j["image_note"]:
        say(f"image: {j['image_note']}", "yellow")
    say(f"models: {trace['run']['settings'].get('models', {})}")
    first_stage = (j.get("model") or "").startswith(f"{FIRST_STAGE}:")
    if first_stage:  # labelled by the cascade's first stage in the run plan: no node ran
        out.rule(Text("first stage"))
        say(f"labelled by {j['model']}: {j['reasoning']}")
    for step in [] if first_stage else trace["steps"]:
        out.rule(Text(step["node"]))
        if step.get("listed"):
            listed = step["listed"]
            say(f"judged with {listed['size'] - 1} other product(s) in one call (call "
                f"#{listed['call_id']}): listed as {listed['list_id']}, position "
                f"{listed['position']} of {listed['size']}, order seed {listed['seed']}. "
                f"The shared prompt is below; this product's own part:")
            out.print(Panel(Text(listed["product_part"]), title=f"{listed['list_id']}",
                            border_style="cyan"))
        if not step["calls"]:
            artefact = step["artefact"]
            say("no model call" + (f" (model {artefact['model']})" if artefact else
                                   " (skipped)"))
            continue
        failed = [c for c in step["calls"] if c["error"]]
        if failed and all(c["error"] for c in step["calls"]):
            say(f"failed: {len(failed)} attempt(s), no valid answer", "red")
        for call in step["calls"]:
            cached = "" if call["run_id"] == j["run_id"] else f" (cached from {call['run_id']})"
            say(f"call #{call['id']} attempt {call['attempt']} · model {call['model']} · "
                f"mode {call.get('output_mode') or '-'} · temperature "
                f"{call.get('temperature')} · prompt {call['prompt_hash']} · tokens in "
                f"{call['input_tokens']} (cached {call['cached_tokens']}) out "
                f"{call['output_tokens']} · {call['latency_ms']:.0f} ms · cost "
                f"{call['cost_usd']}{cached}")
            prompt = "\n\n".join(_message_text(m) for m in call["messages"])
            out.print(Panel(Text(prompt), title="prompt", border_style="blue"))
            out.print(Panel(Text(call["raw_output"] or "(empty)"), title="raw output",
                            border_style="magenta"))
            if call["parsed"] is not None:
                out.print(Syntax(json.dumps(call["parsed"], indent=2, ensure_ascii=False),
                                 "json", word_wrap=True))
            if call["error"]:
                say(f"error: {call['error']}", "red")
    if trace["review"]:
        r = trace["review"]
        out.rule(Text("review"))
        say(f"status {r['status']} · reasons {r['reasons']} · human label "
            f"{r['human_label']} · reviewer {r['reviewer']}")
        for d in r["decisions"]:
            undone = f" (undone {d['undone_at']})" if d["undone_at"] else ""
            note = f" · note {d['note']!r}" if d["note"] else ""
            say(f"  {d['created_at']} {d['role']} {d['reviewer']}: {d['label']}{note}{undone}")
    effective = trace["effective"]
    out.rule(Text("effective label"))
    say(f"{effective['label'] or '-'} ({effective['provenance']}) · the judge said "
        f"{trace['judgment']['label'] or '-'}")


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
    run_id = resolve_run(store, run_id) if run_id else run_id
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
