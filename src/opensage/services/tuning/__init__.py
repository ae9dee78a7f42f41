"""Automatic model tuning: ask/tell over trials persisted with the tuning job's row.

``jobs`` (the service and its reconcile loop), ``validation`` (what AWS refuses in a request),
``warm_start`` (parents' rules and trials), ``plans`` (what a search needs, rebuilt from the
stored job, and its children's requests), ``strategies`` (search spaces, scaling types, Optuna
samplers behind ask).
"""
