"""The FLOP cost model of early exit: what each stage, exit head and saliency map costs a sample,
and what a sample that leaves at a given exit has spent."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from src.early_exit.policies import Policy
from src.early_exit.scores import exit_saliency
from src.models.early_exit import EarlyExitClassifier


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@dataclass
class ExitCosts:
    """FLOPs per sample (batch of one): stage i, exit head k, saliency map at exit k."""

    stages: list[int]
    heads: list[int]
    saliency: list[int]
    exit_stages: list[int]

    @property
    def full_network(self) -> int:
        """A plain network: every stage and the final head only."""
        return sum(self.stages) + self.heads[-1]

    def cost_of_exit(self, policy: Policy, e: int) -> int:
        """Compute spent on a sample that leaves at exit e: its stages, every head it passed,
        and for saliency policies every map needed for a decision (none at the final exit).
        The oracle pays the full network with every map."""
        k = len(self.heads)
        if policy.oracle:
            return sum(self.stages) + sum(self.heads) + sum(self.saliency)
        cost = sum(self.stages[: self.exit_stages[e] + 1]) + sum(self.heads[: e + 1])
        if policy.uses_saliency:
            cost += sum(self.saliency[: min(e + 1, k - 1)])
        return cost


def measure_costs(module: EarlyExitClassifier, sample: torch.Tensor, method: str) -> ExitCosts:
    """``sample``: one raw image (1, C, H, W). Counted with torch.utils.flop_counter; a CAM is
    counted on the head features the exit computed anyway (its only cost is the map itself)."""
    net = module.net
    module.eval()
    stages, x = [], module.net_input(sample)
    with torch.no_grad():
        for stage in net.stages:
            stages.append(_flops(lambda stage=stage, x=x: stage(x)))
            x = stage(x)
        features, x = [], module.net_input(sample)
        for stage in net.stages:
            x = stage(x)
            features.append(x)
        heads = [_flops(lambda k=k, s=s: net.heads[k](features[s])) for k, s in enumerate(net.exit_stages)]
        head_features = [net.heads[k].conv(features[s]) for k, s in enumerate(net.exit_stages)]
        target = torch.zeros(1, dtype=torch.long, device=sample.device)
        saliency = [_flops(lambda k=k: exit_saliency(module, sample, k, target, method, head_features=head_features[k])) for k in range(net.num_exits)]
    return ExitCosts(stages, heads, saliency, list(net.exit_stages))
