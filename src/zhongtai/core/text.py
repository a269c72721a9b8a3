"""Text a person typed, as the API takes it: no control characters.

PostgreSQL refuses NUL in text (a 500 where a 422 naming the field belongs), and control
characters garble a receipt, a pick list or a guide's screen. ``PlainText`` is one line (a
name, a code, a tag); ``NoteText`` may hold line breaks and tabs (a delivery note).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# C0 and C1 controls (NUL among them) and Unicode line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same, but a note may break lines and indent.
_CONTROL_IN_NOTE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a control character (NUL, a line break, ...): no field of one
    line may, whether it comes through the API or an imported file."""
    return _CONTROL.search(value) is not None


def plain_text(value: str) -> str:
    """``value`` unless it holds a control character (NUL, a line break, ...)."""
    if has_control_characters(value):
        raise PydanticCustomError(
            "control_characters", "must not contain control characters (NUL, line breaks, ...)"
        )
    return value


def note_text(value: str) -> str:
    """``value`` unless it holds a control character other than a line break or a tab."""
    if _CONTROL_IN_NOTE.search(value):
        raise PydanticCustomError(
            "control_characters", "must not contain control characters other than line breaks"
        )
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]
NoteText = Annotated[str, AfterValidator(note_text)]
