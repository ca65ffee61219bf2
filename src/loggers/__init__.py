"""Experiment loggers: building and finishing them, the resumable CSV logger, figures sent to them."""
