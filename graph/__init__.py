"""Assembly and entry points: the LangGraph graphs, the Python API and the `raer` CLI."""
