"""`make bench`: what the framework costs, measured side by side (see bench/run.py)."""
