"""The registry of search spaces: the one place where a space's name maps to its class.

Anything stored as plain data (checkpoint meta, `model.json`, a table's header) names its space by
`SearchSpace.name` and its layout by `config()`; `get_space(name, **config)` rebuilds it, and nothing
named by a file runs. Each space is a `SearchSpace` (`supernet.space_base`, which says what a space
owns) in its own module; this module imports them all, none of them imports this one, so there is
no import cycle. A new space is its own module(s) and one line in `SPACES` (or, from outside the
package, `register_space(cls)`).

`Arch`, `Cost`, `SearchSpace` and the spaces are re-exported here: `from supernet.space import ...`.
"""

from __future__ import annotations

from typing import Any

from supernet.chain_space import ChainSpace
from supernet.nb201_space import NB201Space
from supernet.space_base import ENUMERATE_MAX, Arch, Cost, SearchSpace

__all__ = [
    "ENUMERATE_MAX",
    "SPACES",
    "Arch",
    "ChainSpace",
    "Cost",
    "NB201Space",
    "SearchSpace",
    "get_space",
    "register_space",
]

SPACES: dict[str, type[SearchSpace]] = {
    NB201Space.name: NB201Space,
    ChainSpace.name: ChainSpace,
}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Adds a space class under its `name` (usable as a class decorator); a taken name raises."""
    if SPACES.get(cls.name, cls) is not cls:
        raise ValueError(
            f"search space name {cls.name!r} is taken by {SPACES[cls.name].__qualname__}"
        )
    SPACES[cls.name] = cls
    return cls


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Builds a registered search space by name (`nb201`, `chain`) and constructor arguments."""
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; expected one of {sorted(SPACES)}")
    return SPACES[name](**kwargs)
