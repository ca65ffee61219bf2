"""The one registration the configs need: their resolvers and typed schemas. Importing ``src``
registers nothing; the entry points call :func:`register` when they are imported (so a sweep's
worker process, which imports the task function, has them too) and the compose helpers before
they compose."""

from __future__ import annotations

import functools

from omegaconf import OmegaConf

from src.config.project_root import project_root
from src.config.schemas import store_schemas
from src.config.slurm import gpus_per_node, rank_suffix, run_stamp


# once per process: every compose calls it, and storing the schemas again costs about 30 ms
@functools.cache
def register() -> None:
    """Register the resolvers and schemas."""
    # `${project_root:}`: paths.root_dir, $PROJECT_ROOT or this checkout (read at resolution, so
    # registering sets no environment variable)
    OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)
    # `${epochs_per_round:max_epochs,rounds}`: the reduction config splits trainer.max_epochs into
    # rounds, at least one epoch each
    OmegaConf.register_new_resolver("epochs_per_round", lambda epochs, rounds: max(1, int(epochs) // max(1, int(rounds))), replace=True)
    # run dirs: one per srun step under Slurm (every DDP task and a requeued job find the same
    # dir), else the timestamp; the other tasks' Hydra files and logs get a suffix
    OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True)
    OmegaConf.register_new_resolver("rank_suffix", rank_suffix, replace=True)
    # the Slurm launcher's GPU request (conf/hydra/launcher/slurm.yaml)
    OmegaConf.register_new_resolver("slurm_gpus", gpus_per_node, replace=True)
    store_schemas()  # the typed schemas the configs start from
