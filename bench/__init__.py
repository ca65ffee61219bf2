"""`make bench`: the framework's cost against a plain PyTorch loop, the relevance pass, the
loaders, early exit and memory, as ratios measured side by side (docs/performance.md)."""
