"""Client-supplied text made safe for one-line messages and logs."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(value: str, limit: int = 200) -> str:
    """``value`` cut to about ``limit`` characters, with backslashes and quotes escaped
    and every non-printable character too (control characters, line separators,
    bidirectional overrides...: ``\\n``, ``\\x1b``, ``\\u202e``), as Go's ``%q`` does."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return escape_control(value.replace("\\", "\\\\").replace('"', '\\"'))


def quoted(value: str, limit: int = 200) -> str:
    """``value`` escaped and in double quotes, for messages."""
    return f'"{escape(value, limit)}"'


def escape_control(text: str) -> str:
    """``text`` with only its non-printable characters escaped (for a message already
    built from escaped parts, or from client text): it stays one printable line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _code(char) for char in text)


def _code(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
