"""The ground floor's files: atomic writes, checkpoints read and written, results files, provenance."""
