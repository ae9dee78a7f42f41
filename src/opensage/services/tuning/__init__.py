"""Automatic model tuning: ask/tell over trials persisted with the tuning job's row.

``jobs`` (the service and its reconcile loop), ``validation`` (what AWS refuses),
``strategies`` (search spaces, scaling types, Optuna samplers behind ask).
"""
