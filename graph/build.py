"""Builds the judging graph: one run per query, one subgraph branch per product (Send).

```
START → extract_requirements ─→ draft_guidelines ─ Send per product ─→ judge_product
                             └─ (failed) ──────── Send per product ─→ judge_product
listwise (products_per_call > 1):
        draft_guidelines ─ Send per product ─→ describe_listed ─→ chunk_products
        chunk_products ─ Send per chunk ─→ judge_list ─ Send per product ─→ judge_product
        chunk_products ─ Send per product judged before ───────────────→ judge_product
judge_product: START ─┬→ describe_product → judge_pair ─┬→ request_review → record → END
                      ├────────────────────→ judge_pair ─┴→ record → END
                      ├─ (judged in a chunk) ────────────→ request_review / record
                      └─ (query failed) ───────────────────→ record → END
```
`build_graph()` returns the uncompiled graph: the LangGraph server compiles it with its own
persistence, scripts and tests compile it with a checkpointer of their choice.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from raer.graph.routing import (
    fan_out_products,
    route_after_judge,
    route_after_requirements,
    route_product_start,
)
from raer.nodes.chunk_products import chunk_products
from raer.nodes.context import Context
from raer.nodes.describe_listed import describe_listed
from raer.nodes.describe_product import describe_product
from raer.nodes.draft_guidelines import draft_guidelines
from raer.nodes.extract_requirements import extract_requirements
from raer.nodes.judge_list import judge_list
from raer.nodes.judge_pair import judge_pair
from raer.nodes.record import record
from raer.nodes.request_review import request_review
from raer.nodes.state import ProductOutput, ProductState, QueryInput, QueryOutput, QueryState


def build_product_graph(context_schema: type = Context) -> StateGraph:
    builder = StateGraph(ProductState, context_schema=context_schema, output_schema=ProductOutput)
    builder.add_node("describe_product", describe_product)
    builder.add_node("judge_pair", judge_pair)
    builder.add_node("request_review", request_review)
    builder.add_node("record", record)
    builder.add_conditional_edges(START, route_product_start)
    builder.add_edge("describe_product", "judge_pair")
    builder.add_conditional_edges("judge_pair", route_after_judge)
    builder.add_edge("request_review", "record")
    builder.add_edge("record", END)
    return builder


def build_graph(context_schema: type = Context) -> StateGraph:
    """`context_schema`: `Context` for scripts and the CLI (every setting), `ServerSettings`
    for the LangGraph server (what a client may choose; the operator sets the rest)."""
    builder = StateGraph(QueryState, context_schema=context_schema, input_schema=QueryInput,
                         output_schema=QueryOutput)
    builder.add_node("extract_requirements", extract_requirements)
    builder.add_node("draft_guidelines", draft_guidelines)
    builder.add_node("judge_product", build_product_graph(context_schema).compile())
    builder.add_node("describe_listed", describe_listed)
    builder.add_node("chunk_products", chunk_products,
                     destinations=("judge_list", "judge_product"))
    builder.add_node("judge_list", judge_list, destinations=("judge_product",))
    builder.add_edge(START, "extract_requirements")
    builder.add_conditional_edges("extract_requirements", route_after_requirements,
                                  ["draft_guidelines", "judge_product", END])
    builder.add_conditional_edges("draft_guidelines", fan_out_products,
                                  ["judge_product", "describe_listed", END])
    builder.add_edge("describe_listed", "chunk_products")
    builder.add_edge("judge_product", END)
    return builder
