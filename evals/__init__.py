"""Measuring runs: usage and cost now; agreement with people, ablations and reports next.

Evals are not tests: they read what runs stored and say how they went.
"""
