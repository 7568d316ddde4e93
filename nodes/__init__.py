"""The judging graph's nodes, one module per node, plus what they share.

Nodes never import from raer.graph: the state types, output schemas, run settings and the
one door for models live here so that raer.graph only assembles and starts things.
"""
