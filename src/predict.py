"""Segment new images: ``python -m src.predict ckpt_path=... input=<file|folder|glob> [output_dir=...]``.

The model is rebuilt from the checkpoint alone. Per image: a 16-bit foreground-probability PNG,
the label mask (0/255, or a palette PNG of class indices) and optionally an overlay figure; a
``predictions.csv`` with each image's foreground fraction and, where a label file lies beside
the image (``<name>_label.png``, ``<name>_mask.png`` or eliret's ``NNNy.png``) or in ``labels=``
(a folder of files named like the images: a folder data set's ``masks/``), its metrics. Labels of
a model trained on ``data=folder`` are decoded as its training masks were.
Unreadable, oversized or unconvertible images are skipped and listed at the end.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.config.help import answer_help, refuse_misspelt_keys
from src.config.registration import register
from src.config.user_errors import exit_on_user_error

register()  # the configs' resolvers and schemas, in this process and in a sweep's workers


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.jobs.prediction import predict  # torch and Lightning: only once the keys are checked

    predict(cfg)


def cli() -> None:
    """``python -m src.predict`` / ``salseg-predict``; ``--help`` lists the groups and the config."""
    if not answer_help("predict"):
        refuse_misspelt_keys("predict")
        main()


if __name__ == "__main__":
    cli()
