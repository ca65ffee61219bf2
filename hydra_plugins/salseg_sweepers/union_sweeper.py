"""A Hydra sweeper that runs the union of several grids, e.g. a 3x2x2 treatment grid plus one
control arm, each crossed with the same seeds. Hydra's basic sweeper only runs one Cartesian
product, which would repeat the control once per treatment setting.

```yaml
hydra:
  sweeper:
    _target_: hydra_plugins.salseg_sweepers.union_sweeper.UnionSweeper
    params: {seed: 0,1,2}                      # crossed with every grid
    grids:
      - {reduction.percentile: 50,90, reduction.fill: zero,blur}
      - {reduction.rounds: 0}
```
Command-line overrides apply to every job and win over ``params`` and ``grids``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class UnionSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        grids: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.grids = [dict(grid) for grid in (grids or [{}])]

    def job_overrides(self, arguments: list[str]) -> list[list[str]]:
        """Every job's override list: each grid's product with ``params`` and ``arguments``, in
        grid order."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs: list[list[str]] = []
        for grid in self.grids:
            merged = [*self._parse_config(), *(f"{k}={v}" for k, v in grid.items()), *arguments]
            # the last override of a key wins, so command-line arguments beat params and grids
            jobs += self.split_arguments(parser.parse_overrides(merged), None)[0]
        return jobs

    def sweep(self, arguments: list[str]) -> Any:
        jobs = self.job_overrides(arguments)
        self.overrides = list(self.split_overrides_to_chunks(jobs, self.max_batch_size))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info("union of %d grids: %d jobs", len(self.grids), len(jobs))

        returns, first = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            first += len(batch)
            returns.append(results)
        for results in returns:  # every job has run: now raise the first failure, as Hydra does
            for result in results:
                _ = result.return_value
        return returns
