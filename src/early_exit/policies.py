"""Exit policies, and inference that really stops a sample at its exit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from src.config.errors import UserInputError
from src.early_exit.scores import cosine, exit_saliency
from src.models.early_exit import EarlyExitClassifier
from src.saliency.measures import moment_of_inertia, spatial_entropy


@dataclass(frozen=True)
class Policy:
    name: str
    higher_exits: bool  # exit when the signal is >= threshold (else <=)
    uses_saliency: bool
    oracle: bool = False  # needs the full network: for analysis only
    signal: str = ""  # the signal it thresholds; default: its name
    gate: str | None = None  # a second signal that must also be <= its own threshold
    calibrated: bool = False  # needs per-exit temperatures

    @property
    def signal_name(self) -> str:
        return self.signal or self.name


POLICIES = {
    p.name: p
    for p in (
        Policy("confidence", True, False),
        Policy("calibrated_confidence", True, False, calibrated=True),
        Policy("entropy", False, False),
        Policy("saliency_entropy", False, True),
        Policy("saliency_inertia", False, True),
        Policy("coherence_prev", True, True),
        # "does saliency add anything to confidence": leave when calibrated confidence is high
        # AND the map is concentrated; both thresholds chosen jointly on validation
        Policy("calibrated_confidence_and_saliency_entropy", True, True, signal="calibrated_confidence", gate="saliency_entropy", calibrated=True),
        Policy("coherence_final_oracle", True, True, oracle=True),
    )
}


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise UserInputError(f"unknown exit policy {name!r}; choose one of {', '.join(POLICIES)}.")
    return POLICIES[name]


Threshold = float | tuple[float, float]  # (signal threshold, gate threshold) for gated policies


def passes(policy: Policy, signals: dict[str, torch.Tensor], threshold: Threshold) -> torch.Tensor:
    """Which samples leave at an exit, from that exit's signals (NaN signals never do)."""
    main, gate = (threshold, None) if policy.gate is None else threshold
    signal = signals[policy.signal_name]
    leave = signal >= main if policy.higher_exits else signal <= main
    if policy.gate is not None:
        leave = leave & (signals[policy.gate] <= gate)
    return leave


def exit_indices(policy: Policy, signals: dict[str, torch.Tensor], threshold: Threshold) -> torch.Tensor:
    """(N,) exit taken by each sample given the (K, N) signals: the first exit whose signals
    pass, else the final one."""
    k = len(signals[policy.signal_name])
    leave = passes(policy, {name: values[:-1] for name, values in signals.items()}, threshold)
    first = torch.where(leave.any(0), leave.float().argmax(0), torch.full_like(leave[0], k - 1, dtype=torch.long))
    return first.long()


@torch.no_grad()
def early_exit_predict(
    module: EarlyExitClassifier,
    images: torch.Tensor,
    policy: Policy,
    threshold: Threshold,
    saliency_method: str = "cam",
    temperatures: Sequence[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched inference that stops: after each exit the samples that pass leave the batch, and
    the later stages run only on the rest. Returns (predictions, exit index) per sample.

    Per exit, one index tensor of the samples that stay (a single ``nonzero``, the only point
    where a GPU waits) selects the features, ids and maps carried on; every other step stays on
    tensors: each exit writes its prediction for every sample still in, and the later exits
    overwrite those of the samples that stay."""
    if policy.oracle:
        raise UserInputError(f"policy {policy.name} needs the final exit's map: an analysis oracle, not an inference policy.")
    if policy.calibrated and temperatures is None:
        raise UserInputError(f"policy {policy.name} needs the exits' temperatures (fitted on validation by the early-exit evaluation).")
    module.eval()
    net = module.net
    n = len(images)
    predictions = torch.empty(n, dtype=torch.long, device=images.device)
    taken = torch.empty(n, dtype=torch.long, device=images.device)
    remaining = torch.arange(n, device=images.device)
    x = module.net_input(images)
    previous_map: torch.Tensor | None = None
    first = 0  # the first stage not yet run
    for k, exit_stage in enumerate(net.exit_stages):
        for i in range(first, exit_stage + 1):
            x = net.stages[i](x)
        first = exit_stage + 1
        features = net.heads[k].conv(x)
        logits = net.heads[k].classify(features)
        predicted = logits.argmax(1)
        predictions[remaining] = predicted
        taken[remaining] = k
        if k == net.num_exits - 1:
            break
        temperature = 1.0 if temperatures is None else float(temperatures[k])
        signals, maps = _signals(module, policy, images, remaining, features, logits, temperature, k, predicted, previous_map, saliency_method)
        stay = (~passes(policy, signals, threshold)).nonzero().squeeze(1)
        if not len(stay):
            break
        remaining, x = remaining[stay], x[stay]
        previous_map = None if maps is None else maps[stay]
    return predictions, taken


def _signals(
    module: EarlyExitClassifier,
    policy: Policy,
    images: torch.Tensor,
    remaining: torch.Tensor,
    features: torch.Tensor,
    logits: torch.Tensor,
    temperature: float,
    k: int,
    predicted: torch.Tensor,
    previous_map: torch.Tensor | None,
    method: str,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """The signals ``policy`` reads at exit ``k`` (only those), and the saliency map when one
    was computed (``remaining``: the ids of the samples still in the batch)."""
    needed = {policy.signal_name, policy.gate}
    signals = {}
    if needed & {"confidence", "entropy"}:
        probs = logits.softmax(1)
        if "confidence" in needed:
            signals["confidence"] = probs.amax(1)
        if "entropy" in needed:
            signals["entropy"] = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    if "calibrated_confidence" in needed:
        signals["calibrated_confidence"] = (logits / temperature).softmax(1).amax(1)
    if not policy.uses_saliency:
        return signals, None
    maps = exit_saliency(module, images[remaining], k, predicted, method, head_features=features)
    signals["saliency_entropy"] = spatial_entropy(maps)
    signals["saliency_inertia"] = moment_of_inertia(maps)
    signals["coherence_prev"] = torch.full((len(maps),), float("nan"), device=maps.device) if previous_map is None else cosine(maps, previous_map)
    return signals, maps
