"""Hydra's Optuna sweeper with its study in a file that a rerun continues.

The plugin (hydra-optuna-sweeper 1.3) runs ``n_trials`` more trials on every start and numbers
the jobs from 0 again, so a killed search loses its study (in memory) or, with a database,
reruns it from scratch into job dirs of other trials. This sweeper keeps the study in
``<sweep dir>/optuna.db`` (``hparams_search=reduction_optuna``) and, when the same command is run
again in that sweep dir (``ckpt_path=last`` finds it, src/runs/rerun.py):

- finished trials count toward ``n_trials`` and are not run again;
- a trial a killed sweep left RUNNING runs again with its own parameters under its own job
  number, so the job resumes from ``<sweep dir>/<number>/checkpoints/last.ckpt``;
- new trials continue the numbering (job number = trial number) until ``n_trials`` in all.

A resumed search draws its new trials from a sampler seeded with ``seed + trials so far`` (the
sampler's state is not stored; the same seed would redraw the first trials' parameters).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    def sweep(self, arguments: list[str]) -> None:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # SQLite makes no folder
        # what Hydra's basic sweeper records and `ckpt_path=last` matches a sweep by (src/runs/rerun.py)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, sampler=self.sampler, directions=self._get_directions(), load_if_exists=True
        )
        trials = study.get_trials(deepcopy=False)
        if trials:
            seed = self.config.hydra.sweeper.sampler.get("seed")
            if seed is not None:
                self.sampler = instantiate(self.config.hydra.sweeper.sampler, seed=seed + len(trials))
            killed = [t for t in trials if t.state == TrialState.RUNNING]
            log.info(
                "continuing study %s: %d trials so far, %d killed (run again), %d new",
                study.study_name,
                len(trials),
                len(killed),
                max(0, self.n_trials - len(trials)),
            )
            self._run_again(study, killed, [name for name in space if name not in fixed], fixed)
        self.job_idx = len(trials)  # the plugin numbers jobs from here: job number = trial number
        self.n_trials = max(0, self.n_trials - len(trials))
        super().sweep(arguments)

    def _run_again(self, study: optuna.Study, killed: list[FrozenTrial], searched: list[str], fixed: dict[str, Any]) -> None:
        """The killed trials with their own parameters and job numbers, consecutive ones together
        (up to ``n_jobs`` at a time)."""
        batches: list[list[FrozenTrial]] = []
        for trial in killed:
            if batches and trial.number == batches[-1][-1].number + 1 and len(batches[-1]) < self.n_jobs:
                batches[-1].append(trial)
            else:
                batches.append([trial])
        for batch in batches:
            overrides = [tuple(f"{k}={v}" for k, v in {**{k: t.params[k] for k in searched}, **fixed}.items()) for t in batch]
            returns = self.launcher.launch(overrides, initial_job_idx=batch[0].number)
            failures = []
            for trial, result in zip(batch, returns):
                try:
                    study.tell(trial.number, [float(result.return_value)])  # return_value re-raises the job's error
                except Exception as error:  # noqa: BLE001 - the plugin's own rule: a failed trial is told FAIL
                    study.tell(trial.number, state=TrialState.FAIL)
                    log.warning("trial %d failed again: %s", trial.number, error)
                    failures.append(error)
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                raise failures[0]


class ResumableOptunaSweeper(OptunaSweeper):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweeper = ResumableOptunaSweeperImpl(**kwargs)
