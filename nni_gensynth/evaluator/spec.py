"""EvaluationSpec: everything besides a candidate's parameters that decides how it is evaluated.

The builder, the input (image size, channels), the classes, the dataset, the hardware profiles
and the precision they measure, the requirements, the training recipe and the probing switch.
Frozen, validated once by one table of rules, and written in one command-line form
(`python -m nni_gensynth.trial OPTIONS`): the trial parses it, the tuner reads it from the
experiment's trial command (so its screening builds and measures exactly what the trial will),
and reports read it from an experiment's configuration. Torch-free, so the tuner and the report
can read a spec without importing torch.
"""
from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping, Optional, Sequence

from ..defaults import (DEFAULT_BUILDER, DEFAULT_CHANNELS, DEFAULT_EPOCHS, DEFAULT_IMAGE_SIZE,
                        DEFAULT_PROBE_FRACTION, DEFAULT_PROFILE, NO_PROFILE)
from ..constraints import (Choice, FieldError, Flag, Integer, Json, ListOf, Nullable, Real, Record, Text,
                           checked_fields)
from ..hardware.precision import PRECISIONS

TRIAL_MODULE = "nni_gensynth.trial"

# One rule per setting (nni_gensynth.constraints): checked once, whoever builds the spec.
SPEC_TABLE = {
    "builder": Text(),
    "image_size": Integer(1, 4096),
    "channels": Integer(1, 64),
    "num_classes": Nullable(Integer(2, 1_000_000)),
    "data": Nullable(Text()),
    "hw_profiles": ListOf(Text(), max_len=16),
    "requirements": Json(),
    "epochs": Integer(1, 10_000),
    "seed": Integer(0, 2**32 - 1),
    "threads": Integer(1, 1024),
    "probe": Nullable(Flag()),
    "probe_fraction": Real(0.01, 1.0),
    "skip_infeasible": Flag(),
    "use_cache": Flag(),
    "precision": Nullable(Choice(PRECISIONS)),
}


class SpecError(ValueError):
    """An evaluation setting is malformed; the message names it."""


@dataclass(frozen=True)
class EvaluationSpec:
    """How a candidate is built, measured, trained and probed (see the module doc).

    `hw_profiles`: profile names or paths, measured in turn (the first one's metrics as named,
    the others' prefixed with their backend); empty: no measurement. `requirements`:
    {metric: {"max": x} | {"min": x}}, judged on what is measured and trained; measuring stops
    at the first broken one. `num_classes` None: the dataset's. `probe` None: probe when the
    network names probe sites. `precision` (fp32 | int8 | both) overrides every profile's own
    `precision` setting; None keeps each profile's.
    """

    builder: str = DEFAULT_BUILDER
    image_size: int = DEFAULT_IMAGE_SIZE
    channels: int = DEFAULT_CHANNELS
    num_classes: Optional[int] = None
    data: Optional[str] = None
    hw_profiles: tuple[str, ...] = (DEFAULT_PROFILE,)
    requirements: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    threads: int = 1
    probe: Optional[bool] = None
    probe_fraction: float = DEFAULT_PROBE_FRACTION
    skip_infeasible: bool = False
    use_cache: bool = True
    precision: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.hw_profiles, str):
            object.__setattr__(self, "hw_profiles", split_profiles(self.hw_profiles))
        else:
            object.__setattr__(self, "hw_profiles", tuple(self.hw_profiles))
        try:
            Record(SPEC_TABLE).check(asdict(self), "")
        except FieldError as exc:
            raise SpecError(str(exc)) from None
        from ..engine.objective import Requirements

        try:
            config = Requirements(self.requirements).to_config()
        except (TypeError, ValueError) as exc:
            raise SpecError(f"requirements: {exc}") from None
        object.__setattr__(self, "requirements", config)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """One input batch of size 1: (1, channels, image_size, image_size)."""
        return (1, self.channels, self.image_size, self.image_size)

    def replace(self, **changes: Any) -> "EvaluationSpec":
        """This spec with some settings changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings (for state files and reports)."""
        out = asdict(self)
        out["hw_profiles"] = list(self.hw_profiles)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "") -> "EvaluationSpec":
        """A spec from a mapping of its settings; unknown names raise SpecError."""
        if not isinstance(values, Mapping):
            raise SpecError(f"{where}must be a mapping of evaluation settings, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise SpecError(f"{where}unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            return cls(**dict(values))
        except SpecError as exc:
            raise SpecError(f"{where}{exc}") from None

    def to_argv(self) -> list[str]:
        """The command-line options that give this spec back through `spec_from_argv`."""
        argv = ["--builder", self.builder, "--image-size", str(self.image_size), "--channels", str(self.channels),
                "--hw-profile", ",".join(self.hw_profiles) or NO_PROFILE, "--epochs", str(self.epochs),
                "--seed", str(self.seed), "--threads", str(self.threads),
                "--probe-fraction", repr(self.probe_fraction)]
        if self.num_classes is not None:
            argv += ["--num-classes", str(self.num_classes)]
        if self.data is not None:
            argv += ["--data", self.data]
        if self.requirements:
            argv += ["--constraints", json.dumps(self.requirements, sort_keys=True)]
        if self.probe is not None:
            argv.append("--probe" if self.probe else "--no-probe")
        if self.skip_infeasible:
            argv.append("--skip-infeasible")
        if not self.use_cache:
            argv.append("--no-cache")
        if self.precision is not None:
            argv += ["--precision", self.precision]
        return argv


def split_profiles(text: str) -> tuple[str, ...]:
    """"host-cpu,host-tflite" -> ("host-cpu", "host-tflite"); "none" or "" -> ()."""
    if not isinstance(text, str):
        raise SpecError(f"hw_profiles must be a comma-separated string or a list, got {text!r}")
    if text.strip() in ("", NO_PROFILE):
        return ()
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise SpecError(f"hardware profiles {text!r}: an empty name between commas")
    return names


def json_object(text: str, what: str) -> dict[str, Any]:
    """The JSON object in `text` (a command-line value); ValueError naming `what` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The spec's command-line options (defaults from EvaluationSpec)."""
    d = EvaluationSpec()
    parser.add_argument("--builder", default=d.builder, help="registered builder name or 'package.module:callable'")
    parser.add_argument("--image-size", type=int, default=d.image_size, help="input height and width in pixels")
    parser.add_argument("--channels", type=int, default=d.channels, help="input channels")
    parser.add_argument("--num-classes", type=int, default=None, help="classes (default: the dataset's)")
    parser.add_argument("--data", default=None,
                        help="dataset: 'digits' (embedded, default), an ImageFolder directory, a .npz, a "
                             "CIFAR-10 folder, or package.module:function")
    parser.add_argument("--hw-profile", default=",".join(d.hw_profiles),
                        help="hardware profile names or paths, comma-separated (the first one's metrics as "
                             "named, the others' prefixed with their backend); 'none' skips measurement")
    parser.add_argument("--constraints", default="{}", help='requirements as JSON, e.g. \'{"latency_ms": {"max": 1.0}}\'')
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads for training")
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="report probe responses after training (default: when the network names probe sites)")
    parser.add_argument("--probe-fraction", type=float, default=d.probe_fraction,
                        help="share of a layer's Taylor importance a width response keeps")
    parser.add_argument("--skip-infeasible", action="store_true",
                        help="do not train networks whose measured metrics already break the constraints")
    parser.add_argument("--no-cache", action="store_true", help="re-measure even if a cached measurement exists")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="measure candidates as fp32, int8 (static, calibrated on training images) or both, "
                             "on every profile (default: each profile's own precision setting)")


def spec_from_args(args: argparse.Namespace) -> EvaluationSpec:
    """The spec parsed by a parser with `add_spec_arguments`."""
    return EvaluationSpec(builder=args.builder, image_size=args.image_size, channels=args.channels,
                          num_classes=args.num_classes, data=args.data, hw_profiles=split_profiles(args.hw_profile),
                          requirements=json_object(args.constraints, "--constraints"), epochs=args.epochs,
                          seed=args.seed, threads=args.threads, probe=args.probe,
                          probe_fraction=args.probe_fraction, skip_infeasible=args.skip_infeasible,
                          use_cache=not args.no_cache, precision=args.precision)


class _QuietParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpecError(message)


def spec_from_argv(argv: Sequence[str]) -> EvaluationSpec:
    """The spec in trial options (unknown options are ignored); SpecError on a bad value."""
    parser = _QuietParser(add_help=False)
    add_spec_arguments(parser)
    args, _ = parser.parse_known_args(list(argv))
    return spec_from_args(args)


def spec_from_trial_command(command: Optional[str]) -> Optional[EvaluationSpec]:
    """The spec of a trial command that runs `python -m nni_gensynth.trial`, else None."""
    try:
        words = shlex.split(str(command or ""))
    except ValueError:
        return None
    if TRIAL_MODULE not in words:
        return None
    return spec_from_argv(words[words.index(TRIAL_MODULE) + 1:])


checked_fields(SPEC_TABLE, [f.name for f in fields(EvaluationSpec)])
