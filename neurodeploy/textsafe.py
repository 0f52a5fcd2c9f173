"""User-supplied text on the terminal: names and paths cannot restyle, hide or reorder the output."""

from __future__ import annotations

from rich.markup import escape

_BIDI = {0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def shown(text: object) -> str:
    """A user-supplied string as the terminal should show it: rich markup escaped, and control and
    bidirectional-override characters written as escapes (so a name cannot restyle or reorder output)."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if (code < 32 and ch not in "\t\n") or 0x7F <= code < 0xA0 or code in _BIDI:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return escape("".join(out))
