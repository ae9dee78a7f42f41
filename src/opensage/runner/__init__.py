"""Runs jobs behind one Executor protocol; reports progress through callbacks it is given."""
