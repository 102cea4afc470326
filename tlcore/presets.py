"""Classic recipes as named option sets for `tlcore train --preset NAME`."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import TLCoreError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "options": dict(self.options)}


PRESETS: dict[str, Preset] = {}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise TLCoreError(f"Unknown preset {name!r}. Choose one of: {', '.join(PRESETS) or 'none yet'}.")
    return PRESETS[name]
