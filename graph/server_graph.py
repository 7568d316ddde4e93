"""The graph langgraph.json serves. Assembly only: no I/O at import time.

Its run settings are `ServerSettings`: what a client may choose (a model profile, judging
options). Endpoints, keys, the store and the images root come from the operator's
configuration (raer.nodes.server_settings); `web/server_http.py` rejects anything else with 422
before a run starts.
"""

from raer.graph.build import build_graph
from raer.nodes.server_settings import ServerSettings

graph = build_graph(context_schema=ServerSettings).compile()
graph.name = "raer"
