"""The model's value objects, and labels shown in messages (escaped, cut short)."""
import pytest

from chalicelib.model import describe
from chalicelib.quoting import escape


def test_series_described_with_control_characters_escaped():
    text = describe((("__name__", "m"), ("k", 'a\x1b[31m"\n\u2028\x7f')))
    assert text == 'm{k="a\\x1b[31m\\"\\n\\u2028\\x7f"}'
    assert text.isprintable()


def test_every_non_printable_character_is_escaped_as_go_quotes_it():
    assert escape("\u202eevil\t\U000e0001\u00a0ok\U0001f600") == \
        "\\u202eevil\\t\\U000e0001\\xa0ok\U0001f600"


def test_escape_cuts_long_values():
    assert escape("x" * 1000, 10) == "x" * 10 + "..."


@pytest.mark.parametrize("last,shown", [
    (84, '{a="%s",b="%s",c="%s"}' % ("x" * 100, "x" * 100, "x" * 84)),  # 300 characters
    (85, '{a="%s",b="%s",c="%s' % ("x" * 100, "x" * 100, "x" * 83) + "..."),
])
def test_a_series_is_shown_in_at_most_300_characters(last, shown):
    text = describe((("a", "x" * 100), ("b", "x" * 100), ("c", "x" * last)))
    assert text == shown and len(text) == 300
