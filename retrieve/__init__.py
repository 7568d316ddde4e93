"""Retrieve and Repeat: raer asks the search engines itself (config.py, the engines'
modules, snapshot.py) and runs experiments on a schedule (experiment.py)."""
