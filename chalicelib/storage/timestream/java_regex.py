"""Prometheus regexes (Go RE2 syntax) as Java regexes with the same meaning.

Timestream evaluates ``regexp_like(col, pattern)`` with ``java.util.regex`` as a
*contains* match; Prometheus matches ``^(?:pattern)$`` with Go's RE2 (Prometheus 3:
``^(?s:pattern)$``, where ``.`` also matches ``\\n``). The two dialects differ in
syntax (``(?P<n>…)``, ``x{,3}``, ``[[]``, ``[a&&b]``, ``\\Z``, octal ``\\12``) and in
meaning (``(?i)``, ``.``, ``$``, ``\\b``, ``\\s``, multi-line anchors).

So the pattern is parsed here by Go's grammar (``regexp/syntax/parse.go``) and the
Java pattern is *generated*, never copied: every literal is written as ``\\x{…}``
(ASCII letters and digits as themselves), every class as explicit code-point
ranges, case-insensitivity as explicit case-folding classes, ``.``/``^``/``$``/
``\\b`` as explicit classes and lookarounds, every group as ``(?:…)``, every repetition
greedy (``(?U)`` and lazy ``*?`` cannot change whether a whole value matches). The Java
pattern uses no flags, so nothing depends on how Java reads a flag. The result is
wrapped as ``\\A(?:…)\\z``; since the inside is generated, no input can escape it.

What Go refuses is refused (BadRequest, 400) with Go's reason. Refused although Go
accepts, because Java cannot be made to mean the same here: Unicode classes
(``\\pL``, ``\\p{Greek}``) in case-insensitive mode, Unicode scripts unknown to
Java 8, and groups nested deeper than MAX_DEPTH.
"""
import bisect
import re
import sys
from functools import lru_cache
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.caches import BoundedCache
from chalicelib.errors import BadRequest

MAX_RUNE = 0x10FFFF
MAX_REPEAT = 1000  # Go: a count above 1000, or nested counts whose product is, is refused
MAX_DEPTH = 200  # nested groups; Go allows a parse tree 1000 high, Java compiles recursively

Ranges = List[Tuple[int, int]]

_FOLD_CASE, _MULTI_LINE, _DOT_NL, _UNGREEDY = 1, 2, 4, 8
_FLAG_LETTERS = {"i": _FOLD_CASE, "m": _MULTI_LINE, "s": _DOT_NL, "U": _UNGREEDY}

_OCTAL = re.compile("[0-7]{0,2}")  # after a first octal digit
_CAPTURE_NAME = re.compile("[A-Za-z0-9_]+")  # Go's isValidCaptureName
_HEX = re.compile(r"\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2})")  # after \x

_ANY: Ranges = [(0, MAX_RUNE)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]

# Go's regexp/syntax/perl_groups.go: \d \s \w and the POSIX classes are ASCII only.
_PERL_GROUPS: Dict[str, Ranges] = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],  # no \v, unlike Java's \s
    "w": _WORD,
}
_POSIX_GROUPS: Dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": _WORD,
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}

# Go's unicode.Categories (Go 1.19-1.21, what Prometheus 2.x/3.x are built with).
_CATEGORIES = {
    "C": ("Cc", "Cf", "Co", "Cs"), "L": ("Ll", "Lm", "Lo", "Lt", "Lu"), "M": ("Mc", "Me", "Mn"),
    "N": ("Nd", "Nl", "No"), "P": ("Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps"),
    "S": ("Sc", "Sk", "Sm", "So"), "Z": ("Zl", "Zp", "Zs"),
}
_CATEGORIES.update({sub: (sub,) for subs in list(_CATEGORIES.values()) for sub in subs})
# What Java's one-letter categories hold that Go's do not (unassigned code points).
_JAVA_ONLY = {"C": ("Cn",)}
# Scripts Java knows since Java 8 (Character.UnicodeScript, Unicode 6.2); Go knows them
# all. Newer scripts are refused: an older Java in Timestream would reject the pattern.
_SCRIPTS = frozenset("""
COMMON LATIN GREEK CYRILLIC ARMENIAN HEBREW ARABIC SYRIAC THAANA DEVANAGARI BENGALI
GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA MALAYALAM SINHALA THAI LAO TIBETAN MYANMAR
GEORGIAN HANGUL ETHIOPIC CHEROKEE CANADIAN_ABORIGINAL OGHAM RUNIC KHMER MONGOLIAN HIRAGANA
KATAKANA BOPOMOFO HAN YI OLD_ITALIC GOTHIC DESERET INHERITED TAGALOG HANUNOO BUHID TAGBANWA
LIMBU TAI_LE LINEAR_B UGARITIC SHAVIAN OSMANYA CYPRIOT BRAILLE BUGINESE COPTIC NEW_TAI_LUE
GLAGOLITIC TIFINAGH SYLOTI_NAGRI OLD_PERSIAN KHAROSHTHI BALINESE CUNEIFORM PHOENICIAN
PHAGS_PA NKO SUNDANESE BATAK LEPCHA OL_CHIKI VAI SAURASHTRA KAYAH_LI REJANG LYCIAN CARIAN
LYDIAN CHAM TAI_THAM TAI_VIET AVESTAN EGYPTIAN_HIEROGLYPHS SAMARITAN MANDAIC LISU BAMUM
JAVANESE MEETEI_MAYEK IMPERIAL_ARAMAIC OLD_SOUTH_ARABIAN INSCRIPTIONAL_PARTHIAN
INSCRIPTIONAL_PAHLAVI OLD_TURKIC BRAHMI KAITHI MEROITIC_HIEROGLYPHS MEROITIC_CURSIVE
SORA_SOMPENG CHAKMA SHARADA TAKRI MIAO
""".title().split())  # as Go spells them: Old_Italic, Nko, Phags_Pa
# Scripts of Unicode 7-15 (Go knows them; Java 8's Timestream would not).
_NEWER_SCRIPTS = frozenset("""
CAUCASIAN_ALBANIAN BASSA_VAH DUPLOYAN ELBASAN GRANTHA PAHAWH_HMONG KHOJKI LINEAR_A MAHAJANI
MANICHAEAN MENDE_KIKAKUI MODI MRO OLD_NORTH_ARABIAN NABATAEAN PALMYRENE PAU_CIN_HAU OLD_PERMIC
PSALTER_PAHLAVI SIDDHAM KHUDAWADI TIRHUTA WARANG_CITI AHOM ANATOLIAN_HIEROGLYPHS HATRAN
MULTANI OLD_HUNGARIAN SIGNWRITING ADLAM BHAIKSUKI MARCHEN NEWA OSAGE TANGUT MASARAM_GONDI NUSHU
SOYOMBO ZANABAZAR_SQUARE HANIFI_ROHINGYA OLD_SOGDIAN SOGDIAN DOGRA GUNJALA_GONDI MAKASAR
MEDEFAIDRIN ELYMAIC NANDINAGARI NYIAKENG_PUACHUE_HMONG WANCHO YEZIDI CHORASMIAN DIVES_AKURU
KHITAN_SMALL_SCRIPT VITHKUQI TOTO CYPRO_MINOAN OLD_UYGHUR TANGSA KAWI NAG_MUNDARI
""".split())


# Translations made before: Prometheus repeats its queries. A memory budget (16 MiB; a
# pattern can be as long as RE2's program budget allows, and its translation longer): a
# byte more or less cannot change an answer. Besides the two strings an entry holds its
# key and value tuples and the LRU's link, at most _ENTRY_BYTES.
TRANSLATIONS_CACHE_BYTES = 16_777_216  # pragma: no mutate
_ENTRY_BYTES = 320  # pragma: no mutate
_TRANSLATIONS = BoundedCache(TRANSLATIONS_CACHE_BYTES)


def java_regex(pattern: str, dot_all: bool = False) -> str:
    """The Java pattern that ``regexp_like`` (a contains-match) must be given to match
    exactly the strings Prometheus's anchored RE2 ``pattern`` matches.

    ``dot_all``: the client's dialect, ``.`` matches ``\\n`` (Prometheus 3) or not (2.x).
    BadRequest if Go refuses the pattern or Java cannot be made to mean the same."""
    key = (pattern, dot_all)
    found = _TRANSLATIONS.get(key)
    if found is None:
        found = "\\A" + _Translator(pattern, _DOT_NL if dot_all else 0).run() + "\\z"
        _TRANSLATIONS.put(key, found, sys.getsizeof(pattern) + sys.getsizeof(found)
                          + _ENTRY_BYTES)
    return found


# --- case folding -------------------------------------------------------------

@lru_cache(maxsize=1)  # pragma: no mutate (a cache: the same answer, computed once)
def _fold_orbits() -> Tuple[List[int], Dict[int, Tuple[int, ...]]]:
    """Each code point with case-fold equivalents -> its orbit, as Go's unicode.SimpleFold
    walks it (Unicode simple case folding, CaseFolding.txt statuses C and S)."""
    groups: Dict[int, set] = {}
    # Up to Go's maxFold, U+1E943: a bound one higher or lower builds the same orbits
    # (nothing folds past it, and U+1E943 itself is brought in by U+1E921 folding to it).
    for code in range(0x1E944):  # pragma: no mutate
        fold = ord(_simple_fold(chr(code)))
        if fold != code:
            groups.setdefault(fold, {fold}).add(code)
    orbits = {}
    for group in groups.values():
        orbit = tuple(sorted(group))
        for code in orbit:
            orbits[code] = orbit
    return sorted(orbits), orbits


def _simple_fold(char: str) -> str:
    """Simple case folding: casefold() unless it expands (ß -> ss); then the one-character
    lowercase if there is one (ẞ -> ß, status S), else the character itself (İ)."""
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


def _fold(ranges: Ranges) -> Ranges:
    """``ranges`` plus every case-fold equivalent of its members (Go's appendFoldedRange)."""
    keys, orbits = _fold_orbits()
    out = list(ranges)
    for lo, hi in ranges:
        for index in range(bisect.bisect_left(keys, lo), bisect.bisect_right(keys, hi)):
            out.extend((code, code) for code in orbits[keys[index]])
    return _clean(out)


# --- code-point range sets ---------------------------------------------------------

def _clean(ranges: Sequence[Tuple[int, int]]) -> Ranges:
    """Sorted, merged ranges."""
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _negate(ranges: Ranges) -> Ranges:
    out, next_lo = [], 0
    for lo, hi in ranges:
        if next_lo <= lo - 1:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= MAX_RUNE:
        out.append((next_lo, MAX_RUNE))
    return out


def _char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else "\\x{%X}" % code


def _class_body(ranges: Ranges) -> str:
    return "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)


class _Item(NamedTuple):
    """One piece of a concatenation, as Java text."""

    text: str
    unit: bool  # a quantifier may follow it directly
    weight: int = 1  # product of the counted repetitions inside (Go's repeatIsValid)
    ranges: Optional[Ranges] = None  # the code points it matches, if it matches one


# Zero-width items (this one, and those of _ITEMS): quantified, each means the same bare
# or in (?:...), so which of the two `unit` asks for cannot change a match.
_NO_MATCH = _Item("(?!)", False, ranges=[])  # pragma: no mutate


def _class_item(ranges: Ranges, properties: Sequence[str] = ()) -> _Item:
    """A class matching ``ranges`` and the Java ``properties`` (``\\p{…}`` fragments)."""
    ranges = _clean(ranges)
    if properties:
        return _Item("[" + _class_body(ranges) + "".join(properties) + "]", True)
    if not ranges:
        return _NO_MATCH
    if ranges[0][0] == ranges[-1][1]:  # one code point
        return _Item(_char(ranges[0][0]), True, ranges=ranges)
    return _Item("[" + _class_body(ranges) + "]", True, ranges=ranges)


_ANY_ITEM = _class_item(_ANY)
_NOT_NL_ITEM = _class_item(_negate([(10, 10)]))  # RE2's . excludes \n only; Java's also \r...
_WORD_CLASS = _class_item(_WORD).text
_ITEMS = {
    "begin_text": _Item("\\A", False),  # pragma: no mutate
    "end_text": _Item("\\z", False),  # pragma: no mutate
    # RE2's lines end at \n only; Java's (?m) would also split at \r, \u0085, \u2028...
    "begin_line": _Item("(?:\\A|(?<=\\x{A}))", False),  # pragma: no mutate
    "end_line": _Item("(?=\\x{A}|\\z)", False),  # pragma: no mutate
    # RE2's \b is ASCII; Java's follows Unicode letters and digits.
    "word_boundary": _Item(f"(?:(?<={_WORD_CLASS})(?!{_WORD_CLASS})|"
                           f"(?<!{_WORD_CLASS})(?={_WORD_CLASS}))", False),  # pragma: no mutate
    "not_word_boundary": _Item(f"(?:(?<={_WORD_CLASS})(?={_WORD_CLASS})|"
                               f"(?<!{_WORD_CLASS})(?!{_WORD_CLASS}))", False),  # pragma: no mutate
}


# --- the parser -------------------------------------------------------------------

class _Frame:
    """An open group: the flags to restore at its ``)``, its finished branches, and the
    items of the branch being parsed."""

    def __init__(self, flags: int):
        self.flags = flags
        self.branches: List[List[_Item]] = []
        self.items: List[_Item] = []

    def end_branch(self) -> None:
        self.branches.append(self.items)
        self.items = []

    def close(self) -> _Item:
        """The group as one item. Branches matching one code point each become one class
        (as Go does): the same strings, and Java needs no stack per repetition of it
        (``(a|b)*`` overflows Java's default stack on 2 000 characters, ``[ab]*`` does not)."""
        self.end_branch()
        weight = max([1] + [item.weight for branch in self.branches for item in branch])
        classes = [_one_class(branch) for branch in self.branches]
        singles = [ranges for ranges in classes if ranges is not None]
        others = ["".join(item.text for item in branch)
                  for branch, ranges in zip(self.branches, classes) if ranges is None]
        if singles:
            merged = _class_item([r for ranges in singles for r in ranges])
            if not others:
                return merged
            others = [merged.text] + others
        return _Item("(?:" + "|".join(others) + ")", True, weight)


def _one_class(branch: List[_Item]) -> Optional[Ranges]:
    """The code points of a branch that is one class or literal; None for any other."""
    return branch[0].ranges if len(branch) == 1 else None


class _Translator:
    """Go's regexp/syntax parser (Perl flags), emitting Java instead of a syntax tree."""

    def __init__(self, pattern: str, flags: int):
        self.pattern = pattern
        self.pos = 0
        self.flags = flags
        self.frames = [_Frame(flags)]

    # errors
    def invalid(self, reason: str, text: Optional[str] = None) -> BadRequest:
        where = f": `{text}`" if text else ""
        return BadRequest(f"invalid regex {self.pattern!r}: {reason}{where}")

    def unsupported(self, reason: str) -> BadRequest:
        return BadRequest(f"regex {self.pattern!r} cannot be evaluated by Timestream: {reason}")

    # input
    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.pattern[index:index + 1]  # "" past the end

    def take(self) -> str:
        char = self.peek()
        if not char:
            return ""
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise self.invalid("invalid UTF-8")
        self.pos += 1
        return char

    # output
    def push(self, item: _Item) -> None:
        self.frames[-1].items.append(item)

    def literal(self, code: int) -> None:
        ranges = [(code, code)]
        self.push(_class_item(_fold(ranges) if self.flags & _FOLD_CASE else ranges))

    def run(self) -> str:
        last_repeat: Optional[int] = None  # where the previous item's repetition began
        while self.peek():
            repeat = None
            char = self.peek()
            if char == "(":
                self.open_group()
            elif char == "|":
                self.pos += 1
                self.frames[-1].end_branch()
            elif char == ")":
                self.pos += 1
                if len(self.frames) == 1:
                    raise self.invalid("unexpected )", self.pattern)
                frame = self.frames.pop()
                self.flags = frame.flags
                self.push(frame.close())
            elif char == "^":
                self.pos += 1
                self.push(_ITEMS["begin_line" if self.flags & _MULTI_LINE else "begin_text"])
            elif char == "$":
                self.pos += 1
                self.push(_ITEMS["end_line" if self.flags & _MULTI_LINE else "end_text"])
            elif char == ".":
                self.pos += 1
                self.push(_ANY_ITEM if self.flags & _DOT_NL else _NOT_NL_ITEM)
            elif char == "[":
                self.push(self.parse_class())
            elif char in "*+?":
                repeat = self.pos
                self.pos += 1
                self.repeat(char, repeat, last_repeat)
            elif char == "{":
                start = self.pos
                counts = self.parse_counts()
                if counts is None:  # not a repetition: { is a literal (so x{,3} is text)
                    self.pos += 1
                    self.literal(ord("{"))
                else:
                    repeat = start
                    self.repeat("{", start, last_repeat, counts)
            elif char == "\\":
                self.parse_backslash()
            else:
                self.literal(ord(self.take()))
            last_repeat = repeat
        if len(self.frames) > 1:
            raise self.invalid("missing closing )", self.pattern)
        return self.frames.pop().close().text  # a class, a literal or a (?:...) group

    def open_group(self) -> None:
        if len(self.frames) > MAX_DEPTH:
            raise self.unsupported(f"groups nest more than {MAX_DEPTH} deep")
        if self.peek(1) != "?":
            self.pos += 1
            self.frames.append(_Frame(self.flags))
            return
        rest = self.pattern[self.pos:]
        if rest.startswith("(?P<") and len(rest) > 4 or rest.startswith("(?<") and len(rest) > 3:
            head, closed, _ = rest.partition(">")
            if not closed:
                raise self.invalid("invalid named capture", rest)
            if not _CAPTURE_NAME.fullmatch(head, 4 if rest.startswith("(?P") else 3):
                raise self.invalid("invalid named capture", head + ">")
            self.pos += len(head) + 1
            self.frames.append(_Frame(self.flags))  # names do not matter: (?:...)
            return
        start = self.pos
        self.pos += 2
        flags, clearing, saw_flag = self.flags, False, False
        while self.peek():
            char = self.take()
            if char in _FLAG_LETTERS:
                flags = flags & ~_FLAG_LETTERS[char] if clearing else flags | _FLAG_LETTERS[char]
                saw_flag = True
            elif char == "-" and not clearing:
                clearing, saw_flag = True, False
            elif char in ":)" and (saw_flag or not clearing):
                if char == ":":
                    self.frames.append(_Frame(self.flags))
                self.flags = flags
                return
            else:
                break
        raise self.invalid("invalid or unsupported Perl syntax", self.pattern[start:self.pos])

    def parse_int(self) -> Optional[int]:
        """Go's parseInt: decimal digits without leading zeros (-1 if absurdly large)."""
        start = self.pos
        while self.peek().isascii() and self.peek().isdigit():
            self.pos += 1
        digits = self.pattern[start:self.pos]
        if not digits or len(digits) > 1 and digits[0] == "0":
            return None
        return int(digits) if len(digits) <= 8 else -1

    def parse_counts(self) -> Optional[Tuple[int, int]]:
        """``{n}``, ``{n,}`` (max -1), ``{n,m}`` at pos; None (pos unchanged) if not one."""
        start = self.pos
        self.pos += 1
        low = high = self.parse_int()
        if low is not None and self.peek() == ",":
            self.pos += 1
            if self.peek() == "}":
                high = -1
            else:
                high = self.parse_int()
                if high == -1:  # parseInt found too big a number
                    low = -1
        if low is None or high is None or self.peek() != "}":
            self.pos = start
            return None
        self.pos += 1
        if low < 0 or low > MAX_REPEAT or high > MAX_REPEAT or 0 <= high < low:
            raise self.invalid("invalid repeat count", self.pattern[start:self.pos])
        return low, high

    def repeat(self, op: str, start: int, last_repeat: Optional[int],
               counts: Optional[Tuple[int, int]] = None) -> None:
        """Apply ``op`` (``*+?``, or ``{`` with its counts) to the last item, as Go's repeat."""
        if self.peek() == "?":  # lazy: the same whole-value matches as greedy
            self.pos += 1
        if last_repeat is not None:  # Go shows both operators
            raise self.invalid("invalid nested repetition operator",
                               self.pattern[last_repeat:self.pos])
        items = self.frames[-1].items
        if not items:
            raise self.invalid("missing argument to repetition operator",
                               self.pattern[start:self.pos])
        sub = items.pop()
        weight = sub.weight
        if counts:
            low, high = counts
            if not high:
                weight = 1  # Go's repeatIsValid does not look inside x{0}
            else:  # x{n,m} counts m, x{n,} n, and x{0,} its inside once
                weight *= max(low, high, 1)
            if weight > MAX_REPEAT:  # (Go checks only counts >= 2; only those raise it)
                raise self.invalid("invalid repeat count", self.pattern[start:self.pos])
            op = f"{{{low},{high if high >= 0 else ''}}}"  # x{2} as x{2,2}: the same
        text = sub.text if sub.unit else f"(?:{sub.text})"
        items.append(_Item(text + op, False, weight))

    def parse_backslash(self) -> None:
        kind = self.peek(1)
        simple = {"A": "begin_text", "z": "end_text", "b": "word_boundary",
                  "B": "not_word_boundary"}
        if kind in simple:
            self.pos += 2
            self.push(_ITEMS[simple[kind]])
        elif kind == "C":
            raise self.invalid("invalid escape sequence", "\\C")
        elif kind == "Q":  # \Q...\E: literal text up to \E or the end
            text, closed, _ = self.pattern[self.pos + 2:].partition("\\E")
            self.pos += 2
            for _ in text:
                self.literal(ord(self.take()))
            self.pos += len(closed)
        elif kind in ("p", "P"):
            ranges, properties = self.parse_unicode_class()
            self.push(_class_item(ranges, properties))
        elif kind.lower() in _PERL_GROUPS:
            self.pos += 2
            self.push(_class_item(self.group(_PERL_GROUPS[kind.lower()], kind.isupper())))
        else:
            self.literal(self.parse_escape())

    def group(self, ranges: Ranges, negated: bool) -> Ranges:
        """A Perl/POSIX group, case-folded first if (?i) (Go's appendGroup)."""
        if self.flags & _FOLD_CASE:
            ranges = _fold(ranges)
        return _negate(_clean(ranges)) if negated else list(ranges)

    def parse_escape(self) -> int:
        """Go's parseEscape at pos (a backslash): the code point it stands for."""
        start = self.pos
        self.pos += 1
        char = self.take()
        if not char:
            raise self.invalid("trailing backslash at end of expression")
        if char.isascii() and not char.isalnum():
            return ord(char)
        if char in "1234567" and not ("0" <= self.peek() <= "7"):
            raise self.invalid("invalid escape sequence (backreferences are not supported)",
                               self.pattern[start:self.pos])
        if "0" <= char <= "7":  # and up to two more octal digits
            more = _OCTAL.match(self.pattern, self.pos)[0]
            self.pos += len(more)
            return int(char + more, 8)
        if char == "x":
            found = _HEX.match(self.pattern, self.pos)  # \x{h...} or \xhh
            if found and int(found[found.lastindex], 16) <= MAX_RUNE:
                self.pos = found.end()
                return int(found[found.lastindex], 16)
        controls = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if char in controls:
            return controls[char]
        raise self.invalid("invalid escape sequence", self.pattern[start:self.pos])

    def parse_unicode_class(self) -> Tuple[Ranges, List[str]]:
        """``\\pX``, ``\\p{Name}``, ``\\P…``, ``\\p{^Name}`` at pos: ranges and Java fragments."""
        start = self.pos
        negated = self.peek(1) == "P"
        self.pos += 2
        if self.peek() == "{":
            name, closed, _ = self.pattern[self.pos + 1:].partition("}")
            if not closed:
                raise self.invalid("invalid character class range", self.pattern[start:])
            self.pos += len(name) + 2
        else:
            name = self.take()
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        seq = self.pattern[start:self.pos]
        if name == "Any":
            return ([] if negated else list(_ANY)), []
        if name in _CATEGORIES and negated:  # not Java's category, or what only Java's holds
            fragments = [f"\\P{{gc={name}}}"] + [f"\\p{{gc={c}}}" for c in _JAVA_ONLY.get(name, ())]
        elif name in _CATEGORIES:
            fragments = [f"\\p{{gc={part}}}" for part in _CATEGORIES[name]]
        elif name in _SCRIPTS:
            fragments = [("\\P{" if negated else "\\p{") + "sc=" + name + "}"]
        elif name.upper() in _NEWER_SCRIPTS:
            raise self.unsupported(f"{seq}: scripts newer than Unicode 6.2 (Java 8)")
        else:
            raise self.invalid("invalid character class range", seq)
        if self.flags & _FOLD_CASE:
            raise self.unsupported(f"Unicode classes such as {seq} in case-insensitive mode")
        return [], fragments

    def parse_class(self) -> _Item:
        """Go's parseClass at pos (``[``)."""
        start = self.pos
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: Ranges = []
        properties: List[str] = []
        first = True
        while self.peek() != "]" or first:
            if not self.peek():
                raise self.invalid("missing closing ]", self.pattern[start:])
            first = False
            if self.pattern.startswith("[:", self.pos):
                name, closed, _ = self.pattern[self.pos + 2:].partition(":]")
                if closed:
                    self.pos += len(name) + 4
                    bare = name[1:] if name.startswith("^") else name
                    if bare not in _POSIX_GROUPS:
                        raise self.invalid("invalid character class range", f"[:{name}:]")
                    ranges += self.group(_POSIX_GROUPS[bare], name.startswith("^"))
                    continue
            if self.peek() == "\\" and self.peek(1) in ("p", "P"):
                more, fragments = self.parse_unicode_class()
                ranges += more
                properties += fragments
                continue
            if self.peek() == "\\" and self.peek(1).lower() in _PERL_GROUPS:
                kind = self.peek(1)
                self.pos += 2
                ranges += self.group(_PERL_GROUPS[kind.lower()], kind.isupper())
                continue
            range_start = self.pos
            low = self.class_char()
            high = low
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                high = self.class_char()
                if high < low:
                    raise self.invalid("invalid character class range",
                                       self.pattern[range_start:self.pos])
            ranges += _fold([(low, high)]) if self.flags & _FOLD_CASE else [(low, high)]
        self.pos += 1
        if not negated:
            return _class_item(ranges, properties)
        if not properties:
            return _class_item(_negate(_clean(ranges)))
        # A negated union with Unicode properties: any one code point not in it.
        return _Item(f"(?!{_class_item(ranges, properties).text}){_ANY_ITEM.text}", False)

    def class_char(self) -> int:
        if self.peek() == "\\":
            return self.parse_escape()
        return ord(self.take())  # (parse_class saw there is one)
