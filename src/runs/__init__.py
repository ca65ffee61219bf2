"""Run files and checkpoints: atomic writes, checkpoint reading and writing, output-folder checks, results, provenance and re-runs."""
