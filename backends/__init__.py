"""Solver adapters and the exact graph-search referee."""
