"""Silencing what Lightning prints that no user can act on, at its source: a filter on the logger
its ``rank_zero_info`` writes to, and one warning filter."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from src.config import slurm

# the start of each message dropped, and why it is not actionable
NOISE = (
    "💡 Tip:",  # advertisements (cloud logging, litmodels uploads) for tools we do not use
    "Trainer already configured with model summary callbacks",  # ours is configured on purpose
    "`Trainer.fit` stopped: `max_epochs=",  # the last epoch's line says so, and came after it
)
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE)


def silence_lightning_noise() -> None:
    """Idempotent: the filter is added once per logger.

    ``import lightning`` also gives the ``lightning`` logger a console handler of its own while
    its records still propagate to the root logger: under Hydra's logging every Lightning line
    was printed twice (``INFO: ...`` on stderr, Hydra's format on stdout). Where the root logger
    has handlers, Lightning's goes, and its lines reach the console and the run's log file once.
    """
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        for handler in [h for h in lightning_logger.handlers if type(h) is logging.StreamHandler]:
            lightning_logger.removeHandler(handler)
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise())
    # on a host with Slurm installed, Lightning suggests srun for every local run; the hint helps
    # only inside a Slurm job (a batch script that forgot srun), so it is kept there
    if slurm.job_id() is None:
        warnings.filterwarnings("ignore", message="The `srun` command is available on your system but is not used")
    # Lightning's own use of a torch API that torch deprecated; nothing to change on our side
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    # the modules log once per epoch (SegmentationModule._log_metrics), so the step interval a short
    # epoch falls under changes nothing (every debug=fast run printed it)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
    # a resumed run writes into its own checkpoints/ on purpose (src/runs/rerun.py)
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


# what Lightning says each time an evaluation loads a checkpoint; the final table's title names
# the checkpoint once, and a resumed fit's own "Restoring states" line stays
CHECKPOINT_LOADS = ("Restoring states from the checkpoint path", "Loaded model weights from the checkpoint")


class DropCheckpointLoads(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(CHECKPOINT_LOADS)


@contextmanager
def quiet_checkpoint_loads() -> Iterator[None]:
    """Inside the block, evaluations load checkpoints without a line each."""
    quiet = DropCheckpointLoads()
    loggers = [logging.getLogger(name) for name in RANK_ZERO_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
