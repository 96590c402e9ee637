"""Runnable examples. ``python -m examples`` runs the main one (GitHub issue triage) end to
end; ``python -m examples.quickstart`` the smallest.
"""
