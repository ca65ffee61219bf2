"""Exit policies, and inference that really stops a sample at its exit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from src.early_exit.scores import cosine, exit_saliency
from src.errors import UserInputError
from src.models.early_exit import EarlyExitClassifier
from src.saliency.measures import moment_of_inertia, spatial_entropy


@dataclass(frozen=True)
class Policy:
    name: str
    higher_exits: bool  # exit when the signal is >= threshold (else <=)
    uses_saliency: bool
    oracle: bool = False  # needs the full network: for analysis only


POLICIES = {
    p.name: p
    for p in (
        Policy("confidence", True, False),
        Policy("entropy", False, False),
        Policy("saliency_entropy", False, True),
        Policy("saliency_inertia", False, True),
        Policy("coherence_prev", True, True),
        Policy("coherence_final_oracle", True, True, oracle=True),
    )
}


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise UserInputError(f"unknown exit policy {name!r}; choose one of {', '.join(POLICIES)}.")
    return POLICIES[name]


def passes(policy: Policy, signal: torch.Tensor, threshold: float) -> torch.Tensor:
    """Which samples leave at this exit (NaN signals never do)."""
    return signal >= threshold if policy.higher_exits else signal <= threshold


def exit_indices(policy: Policy, signals: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N,) exit taken by each sample given its (K, N) signals: the first exit whose signal
    passes, else the final one."""
    k = len(signals)
    leave = passes(policy, signals[:-1], threshold)
    first = torch.where(leave.any(0), leave.float().argmax(0), torch.full_like(leave[0], k - 1, dtype=torch.long))
    return first.long()


@torch.no_grad()
def early_exit_predict(
    module: EarlyExitClassifier, images: torch.Tensor, policy: Policy, threshold: float, saliency_method: str = "gradcam"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched inference that stops: after each exit the samples that pass leave the batch, and
    the later stages run only on the rest. Returns (predictions, exit index) per sample."""
    if policy.oracle:
        raise UserInputError(f"policy {policy.name} needs the final exit's map: an analysis oracle, not an inference policy.")
    module.eval()
    net = module.net
    n = len(images)
    predictions = torch.empty(n, dtype=torch.long, device=images.device)
    taken = torch.empty(n, dtype=torch.long, device=images.device)
    remaining = torch.arange(n, device=images.device)
    x = module.normalise(images)
    previous_map: torch.Tensor | None = None
    k = 0
    for i, stage in enumerate(net.stages):
        x = stage(x)
        if net.exit_stages[k] != i:
            continue
        logits = net.heads[k](x)
        predicted = logits.argmax(1)
        if k == net.num_exits - 1:
            leave = torch.ones_like(predicted, dtype=torch.bool)
        else:
            signal, previous_map = _signal(module, policy, images[remaining], logits, k, predicted, previous_map, saliency_method)
            leave = passes(policy, signal, threshold)
        predictions[remaining[leave]] = predicted[leave]
        taken[remaining[leave]] = k
        stay = ~leave
        remaining, x = remaining[stay], x[stay]
        if previous_map is not None:
            previous_map = previous_map[stay]
        k += 1
        if not len(remaining):
            break
    return predictions, taken


def _signal(
    module: EarlyExitClassifier,
    policy: Policy,
    images: torch.Tensor,
    logits: torch.Tensor,
    k: int,
    predicted: torch.Tensor,
    previous_map: torch.Tensor | None,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if policy.name == "confidence":
        return logits.softmax(1).max(1).values, None
    if policy.name == "entropy":
        probs = logits.softmax(1)
        return -(probs * probs.clamp_min(1e-12).log()).sum(1), None
    maps = exit_saliency(module, images, k, predicted, method)
    if policy.name == "saliency_entropy":
        return spatial_entropy(maps), maps
    if policy.name == "saliency_inertia":
        return moment_of_inertia(maps), maps
    signal = torch.full((len(maps),), float("nan"), device=maps.device) if previous_map is None else cosine(maps, previous_map)
    return signal, maps
