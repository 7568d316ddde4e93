"""The graph langgraph.json serves. Assembly only: no I/O at import time."""

from raer.graph.build import build_graph

graph = build_graph().compile()
graph.name = "raer"
