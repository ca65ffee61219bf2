"""Callbacks every run gets: elapsed time, the stop on a non-finite loss, random states in checkpoints."""
