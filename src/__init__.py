"""salseg: a Lightning + Hydra framework for segmentation and saliency research."""

from omegaconf import OmegaConf

from src.config.project_root import project_root

# `${project_root:}`: paths.root_dir, $PROJECT_ROOT or this checkout (read at resolution, so
# importing src sets no environment variable)
OmegaConf.register_new_resolver("project_root", lambda: str(project_root()), replace=True)

# `${epochs_per_round:max_epochs,rounds}`: the reduction config splits trainer.max_epochs into
# rounds, at least one epoch each.
OmegaConf.register_new_resolver("epochs_per_round", lambda epochs, rounds: max(1, int(epochs) // max(1, int(rounds))), replace=True)

from src.runs.slurm import gpus_per_node, rank_suffix, run_stamp  # noqa: E402

# run dirs: one per srun step under Slurm (every DDP task and a requeued job find the same dir),
# else the timestamp; the other tasks' Hydra files and logs get a suffix
OmegaConf.register_new_resolver("run_stamp", run_stamp, replace=True)
OmegaConf.register_new_resolver("rank_suffix", rank_suffix, replace=True)
# the Slurm launcher's GPU request (conf/hydra/launcher/slurm.yaml)
OmegaConf.register_new_resolver("slurm_gpus", gpus_per_node, replace=True)

from src.config.schemas import register  # noqa: E402

register()  # the typed schemas the configs start from
