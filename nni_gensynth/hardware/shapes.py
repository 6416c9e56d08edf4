"""The one parser of input shapes: "1,3,32,32" on a command line, [1, 3, 32, 32] in a profile,
(1, 3, 32, 32) from code.

Bounded, so that a typo (or 2**31) is refused where it is written instead of allocating
gigabytes in an export or on a device.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

from ..constraints import FieldError, Integer, short_repr

MAX_DIMS = 8
MAX_DIM = 1 << 16            # one dimension
MAX_ELEMENTS = 1 << 27       # a whole input: 512 MiB of float32


def parse_input_shape(value: Union[str, Sequence[Any]], *, ndim: Optional[int] = None,
                      name: str = "input_shape") -> Tuple[int, ...]:
    """``value`` ("1,3,32,32" or a sequence of integers) as a tuple of positive ints.

    ``ndim`` asks for exactly that many dimensions. Raises FieldError (a ValueError) naming
    ``name`` (an option such as "--input-shape", or a profile field), with ``name[i]`` for a bad
    dimension.
    """
    wanted = f"{ndim} " if ndim is not None else ""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        try:
            dims: Sequence[Any] = [int(part) for part in parts]
        except ValueError:
            raise FieldError(name, f"must be {wanted}comma-separated positive integers such as 1,3,32,32, "
                                   f"got {short_repr(value)}") from None
    elif isinstance(value, (list, tuple)):
        dims = value
    else:
        raise FieldError(name, f"must be a list of {wanted}positive integers, got {short_repr(value)}")
    if not 1 <= len(dims) <= MAX_DIMS or (ndim is not None and len(dims) != ndim):
        raise FieldError(name, f"must have {ndim if ndim is not None else f'1 to {MAX_DIMS}'} dimensions, "
                               f"got {len(dims)}")
    shape = tuple(Integer(1, MAX_DIM).check(d, f"{name}[{i}]") for i, d in enumerate(dims))
    if math.prod(shape) > MAX_ELEMENTS:
        raise FieldError(name, f"has {math.prod(shape)} elements, more than {MAX_ELEMENTS}")
    return shape
