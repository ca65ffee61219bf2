"""Configuration and errors: typed schemas, composing configs, building a run's pieces, user errors."""
