"""Runnable examples. ``python -m examples.quickstart`` runs the smallest one end to end."""
