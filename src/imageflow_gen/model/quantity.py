"""Kubernetes quantities as exact numbers, for comparisons (requests <= limits, capacity)."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_FORM = re.compile(r"^\+?(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


def parse(text: str | int) -> Decimal:
    """'500m' -> 0.5, '1Gi' -> 1073741824, 2 -> 2. Raises ValueError on anything else."""
    match = _FORM.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = Decimal(match["num"]), match["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]
