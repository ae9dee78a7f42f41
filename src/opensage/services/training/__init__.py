"""Training jobs: a row plus a state machine; the runner does the work."""
