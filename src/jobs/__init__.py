"""The jobs the entry points run (training, evaluation) and the builders that assemble them from a config."""
