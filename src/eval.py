"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=<run>/checkpoints/last.ckpt [data=...]``.

The model (net, output mode, normalisation) is rebuilt from the checkpoint alone; the data is the
run's own (its ``.hydra/config.yaml``) where the checkpoint sits in its run dir, with any
``data.*`` overrides on top; ``data=...`` picks another data set.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.config.help import answer_help, refuse_misspelt_keys
from src.config.registration import register
from src.config.user_errors import exit_on_user_error

register()  # the configs' resolvers and schemas, in this process and in a sweep's workers


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.jobs.evaluation import evaluate  # torch and Lightning: only once the keys are checked

    evaluate(cfg)


def cli() -> None:
    """``python -m src.eval`` / ``salseg-eval``; ``--help`` lists the groups and the config."""
    if not answer_help("eval"):
        refuse_misspelt_keys("eval")
        main()


if __name__ == "__main__":
    cli()
