"""Client-supplied text made safe for one-line messages and logs."""
import re

# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators:
# anything that could break a log line or forge a new one.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(value: str, limit: int = 200) -> str:
    """``value`` with backslashes, quotes and control characters escaped
    (``\\n``, ``\\x1b``, ``\\u2028``), cut to about ``limit`` characters."""
    if len(value) > limit:
        value = value[:limit] + "..."
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    return _CONTROL.sub(_control, value)


def quoted(value: str, limit: int = 200) -> str:
    """``value`` escaped and in double quotes, for messages."""
    return f'"{escape(value, limit)}"'


def _control(match: "re.Match[str]") -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` with only its control characters escaped (for a message already
    built from escaped parts, or from client text)."""
    return _CONTROL.sub(_control, text)
