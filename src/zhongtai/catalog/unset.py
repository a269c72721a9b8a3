"""The marker of a field a PATCH left out, as distinct from a field set to null."""

from __future__ import annotations

from enum import Enum


class Unset(Enum):
    TOKEN = 0


UNSET = Unset.TOKEN
