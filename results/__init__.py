"""``make results``: rerun the runs behind every results table of the docs and rewrite them."""
