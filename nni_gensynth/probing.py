"""Probing a trained network: targeted stimuli in, reactionary responses out (torch only).

The inquisitor's probes (GenSynth, Wong et al. 2018): after training, a probe batch from the
held-out data and synthetic stimuli at the input statistics (Gaussian noise, low-frequency
patterns) are fed through the network; for every component a decision of the search space
controls (`model.probe_sites()`, see nni_gensynth.models.prototype.ProbeSite) the probe records

- per channel: activation energy (mean squared activation) and first-order Taylor importance
  |Σ_hw a·∂L/∂a|, averaged over the examples (Molchanov et al., "Pruning Convolutional Neural
  Networks for Resource Efficient Inference", ICLR 2017; "Importance Estimation for Neural
  Network Pruning", CVPR 2019). On synthetic stimuli, which carry no labels, L is the
  cross-entropy against the network's own predictions;
- per removable block: the loss increase when its residual branch is zeroed (which is removing
  the block) and the batch-norm statistics re-estimated on the probe batch (as retraining
  without the block would adapt them), and, on synthetic stimuli, the KL divergence of the
  outputs it causes.

They are turned into the compact contract the engine reads (`GenSynth(..., use_responses=True)`):
    {decision: {"target": value in the decision's domain, "weight": (0, 1]}}
A width target is the smallest option holding the channels that carry `fraction` (95%) of the
layer's Taylor importance; a block target is "skip" for the cheapest blocks whose removal
together raises the loss by less than `skip_threshold` of the chance-level loss ln(classes), else
"keep". The weight is the agreement of the probe batch and the synthetic stimuli (and, for
blocks, the margin from the threshold).
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hardware.host_lease import batches_on_host
from .models.prototype import KEEP, SKIP, ProbeSite


@dataclass
class ChannelStats:
    """Per-channel responses of one width site on one kind of stimulus."""

    energy: Tensor  # mean squared activation per channel
    taylor: Tensor  # mean |Σ_hw a·g| per channel

    def carrying_channels(self, fraction: float) -> int:
        """The fewest channels whose Taylor importance sums to `fraction` of the layer's."""
        total = float(self.taylor.sum())
        if total <= 0.0 or not math.isfinite(total):
            return 1
        ordered = torch.sort(self.taylor, descending=True).values
        cumulative = torch.cumsum(ordered, 0) / total
        return int(torch.searchsorted(cumulative, torch.tensor([fraction - 1e-9], dtype=cumulative.dtype))[0]) + 1


@dataclass
class SiteResponse:
    """What one decision's probe found, and the compact response it gives."""

    decision: str
    kind: str
    target: Any
    weight: float
    details: dict[str, Any] = field(default_factory=dict)

    def compact(self) -> dict[str, Any]:
        target = round(self.target, 6) if isinstance(self.target, float) else self.target
        return {"target": target, "weight": round(float(self.weight), 3)}


@dataclass
class ProbeReport:
    """Every site's response; `responses()` is the contract dict, `to_json()` its compact text."""

    sites: list[SiteResponse]
    loss: float

    def responses(self) -> dict[str, dict[str, Any]]:
        return {s.decision: s.compact() for s in self.sites}

    def to_json(self) -> str:
        return json.dumps(self.responses(), separators=(",", ":"), sort_keys=True)


def synthetic_stimuli(like: Tensor, n: int, seed: int = 0) -> Tensor:
    """Gaussian noise and low-frequency patterns with the per-channel mean and std of `like`
    (half each): inputs that exercise the network away from the data it was trained on."""
    if like.dim() != 4:
        raise ValueError(f"stimuli need NCHW example inputs, got shape {tuple(like.shape)}")
    generator = torch.Generator().manual_seed(seed)
    _, c, h, w = like.shape
    mean = like.mean(dim=(0, 2, 3), keepdim=True)
    std = like.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    n_noise = n // 2
    noise = torch.randn(n_noise, c, h, w, generator=generator)
    coarse = torch.randn(n - n_noise, c, max(2, h // 8), max(2, w // 8), generator=generator)
    smooth = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    smooth = (smooth - smooth.mean(dim=(2, 3), keepdim=True)) / smooth.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return torch.cat([noise, smooth]) * std + mean


def _channel_stats(model: nn.Module, sites: Sequence[ProbeSite], x: Tensor,
                   labels: Optional[Tensor]) -> tuple[dict[str, ChannelStats], float]:
    """One forward and backward pass: energy and Taylor importance at every width site."""
    activations: dict[str, Tensor] = {}
    gradients: dict[str, Tensor] = {}
    handles = []

    def recorder(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            activations[name] = output.detach()
            if output.requires_grad:
                output.register_hook(lambda grad: gradients.__setitem__(name, grad.detach()))
        return hook

    for site in sites:
        handles.append(site.module.register_forward_hook(recorder(site.decision)))
    try:
        with torch.enable_grad():
            logits = model(x)
            targets = labels if labels is not None else logits.detach().argmax(dim=1)
            loss = F.cross_entropy(logits, targets)
            model.zero_grad(set_to_none=True)
            loss.backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    stats = {}
    for site in sites:
        a = activations[site.decision]
        g = gradients.get(site.decision, torch.zeros_like(a))
        dims = tuple(range(2, a.dim()))
        energy = (a * a).mean(dim=(0,) + dims)
        taylor = (a * g).sum(dim=dims).abs().mean(dim=0) if dims else (a * g).abs().mean(dim=0)
        stats[site.decision] = ChannelStats(energy=energy, taylor=taylor)
    return stats, float(loss.detach())


def _zeroing(module: nn.Module):
    return module.register_forward_hook(lambda _m, _i, output: torch.zeros_like(output))


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@contextmanager
def _recalibrated(model: nn.Module, x: Tensor, chunk: int = 64) -> Iterator[None]:
    """The model with its batch-norm statistics re-estimated on `x` (restored afterwards).

    A network that loses a block is retrained without it, and its normalisation adapts to the
    smaller signal; zeroing a branch in the trained network leaves every later BN layer
    normalising with the statistics of the intact network, which overstates what the block is
    worth many times over. Re-estimating the statistics is the cheap stand-in for that
    adaptation (as in the BN recalibration of one-shot NAS, e.g. Guo et al., "Single Path
    One-Shot NAS", ECCV 2020)."""
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
    was_training = model.training
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        model.train()
        with torch.no_grad(), batches_on_host() as next_batch:  # a candidate timed on this host gets idle cores
            for start in range(0, len(x), chunk):
                next_batch()
                if len(x) - start > 1:  # batch norm needs more than one example per batch
                    model(x[start:start + chunk])
        model.eval()
        yield
    finally:
        for m, (momentum, state) in zip(norms, saved):
            m.momentum = momentum
            m.load_state_dict(state)
        model.train(was_training)


@torch.no_grad()
def _recalibrated_outputs(model: nn.Module, x: Tensor, y: Tensor, x_syn: Tensor) -> tuple[float, Tensor]:
    """The intact network's probe-batch loss and log-probabilities on the stimuli, with its
    batch-norm statistics re-estimated like those of a network missing a block."""
    with _recalibrated(model, x):
        return float(F.cross_entropy(model(x), y)), F.log_softmax(model(x_syn), dim=1)


@torch.no_grad()
def _block_effects(model: nn.Module, sites: Sequence[ProbeSite], x: Tensor, y: Tensor, x_syn: Tensor,
                   base_loss: float, base_syn: Tensor) -> tuple[float, float]:
    """(loss increase on the probe batch as a fraction of the chance-level loss ln(classes), mean KL
    on the stimuli) when the branches of `sites` are zeroed together, against the intact network
    (`_recalibrated_outputs`), both with the batch-norm statistics re-estimated on the probe batch
    (see `_recalibrated`). Chance level, not the network's own loss, sets the scale: a
    well-trained network's loss is near 0, and any change would look large against it."""
    handles = [_zeroing(site.module) for site in sites]
    try:
        with _recalibrated(model, x):
            logits = model(x)
            loss = float(F.cross_entropy(logits, y))
            kl = float(F.kl_div(F.log_softmax(model(x_syn), dim=1), base_syn, log_target=True,
                                reduction="batchmean"))
    finally:
        for handle in handles:
            handle.remove()
    return (loss - base_loss) / math.log(max(2, logits.shape[1])), kl


def _block_responses(model: nn.Module, blocks: Sequence[ProbeSite], x: Tensor, y: Tensor, x_syn: Tensor,
                     skip_threshold: float) -> list[SiteResponse]:
    """Which blocks can go, judged together: every block's own removal cost first, then, cheapest
    first, blocks join the removal set while removing the whole set at once still raises the loss
    by less than `skip_threshold` (costs of removals do not simply add up, and each block alone
    being cheap does not make all of them cheap together)."""
    base_loss, base_syn = _recalibrated_outputs(model, x, y, x_syn)
    alone = {s.decision: _block_effects(model, [s], x, y, x_syn, base_loss, base_syn) for s in blocks}
    removed: list[ProbeSite] = []
    together: dict[str, tuple[float, float]] = {}
    for site in sorted(blocks, key=lambda s: alone[s.decision][0]):
        if alone[site.decision][0] >= skip_threshold:
            break
        effect = alone[site.decision] if not removed else \
            _block_effects(model, removed + [site], x, y, x_syn, base_loss, base_syn)
        if effect[0] >= skip_threshold:
            break
        removed.append(site)
        together[site.decision] = effect
    responses = []
    for site in blocks:
        rise, kl = alone[site.decision]
        details: dict[str, Any] = {"loss_rise": rise, "kl_synthetic": kl}
        if site.decision in together:
            joint_rise, joint_kl = together[site.decision]
            details.update(joint_loss_rise=joint_rise, joint_kl_synthetic=joint_kl)
            margin = min(1.0, max(0.2, (skip_threshold - joint_rise) / skip_threshold))
            agrees = kl < skip_threshold
            responses.append(SiteResponse(site.decision, "block", SKIP, margin * (1.0 if agrees else 0.5), details))
        else:
            # costly alone: keep by its margin; cheap alone but not with the cheaper ones: keep, weakly
            margin = min(1.0, max(0.2, (rise - skip_threshold) / skip_threshold)) if rise >= skip_threshold else 0.2
            agrees = kl >= skip_threshold
            responses.append(SiteResponse(site.decision, "block", KEEP, margin * (1.0 if agrees else 0.5), details))
    return responses


def _nearest_option_at_least(options: Sequence[Any], value: float) -> Any:
    numeric = sorted(o for o in options if isinstance(o, (int, float)) and not isinstance(o, bool))
    if not numeric:
        raise ValueError(f"width options must be numbers, got {list(options)}")
    return next((o for o in numeric if o >= value - 1e-9), numeric[-1])


def probe(model: nn.Module, x: Tensor, y: Tensor, *, n_synthetic: int = 32, fraction: float = 0.95,
          skip_threshold: float = 0.02, seed: int = 0, sites: Optional[Sequence[ProbeSite]] = None) -> ProbeReport:
    """Probe `model` (trained) with the batch (x, y) and synthetic stimuli; see the module doc.

    `fraction`: share of a layer's Taylor importance its width target keeps. `skip_threshold`:
    blocks are suggested for removal while zeroing them all together raises the probe-batch loss
    by less than this fraction of the chance-level loss ln(classes) (see `_block_responses`).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if skip_threshold <= 0.0:
        raise ValueError(f"skip_threshold must be > 0, got {skip_threshold}")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"probe batch needs matching, non-empty inputs and labels, got {len(x)} and {len(y)}")
    if sites is None:
        get_sites = getattr(model, "probe_sites", None)
        if get_sites is None:
            raise TypeError(f"{type(model).__name__} has no probe_sites(): nothing to probe")
        sites = get_sites()
    was_training = model.training
    model.eval()
    try:
        x_syn = synthetic_stimuli(x, n_synthetic, seed)
        widths = [s for s in sites if s.kind == "width"]
        real, loss = _channel_stats(model, widths, x, y)
        synthetic, _ = _channel_stats(model, widths, x_syn, None)
        responses = []
        for site in widths:
            channels = int(real[site.decision].taylor.numel())
            k_real = real[site.decision].carrying_channels(fraction)
            k_syn = synthetic[site.decision].carrying_channels(fraction)
            target = _nearest_option_at_least(site.options, k_real / site.unit)
            weight = min(1.0, max(0.1, 1.0 - abs(k_real - k_syn) / channels))
            responses.append(SiteResponse(site.decision, "width", target, weight, {
                "channels": channels, "carrying": k_real, "carrying_synthetic": k_syn,
                "dead": int((real[site.decision].energy <= 1e-12).sum())}))
        blocks = [s for s in sites if s.kind == "block"]
        if blocks:
            responses += _block_responses(model, blocks, x, y, x_syn, skip_threshold)
    finally:
        model.train(was_training)
    return ProbeReport(responses, loss)


def probe_responses(model: nn.Module, x_test: Tensor, y_test: Tensor, *, n_probe: int = 128,
                    seed: int = 0, **kwargs: Any) -> Optional[str]:
    """The compact JSON a trial reports under "responses": a probe batch of `n_probe` held-out
    examples (fixed by `seed`); None when the model names no probe sites."""
    if getattr(model, "probe_sites", None) is None:
        return None
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x_test), generator=generator)[:n_probe]
    return probe(model, x_test[index], y_test[index], seed=seed, **kwargs).to_json()
