"""What a search asked for but did not get, told in the answer's Warning header.

PS3.18 §8.3.4 has the origin server say, with ``Warning: 299 <service>: ...``
(RFC 7234 §5.5), when it does not perform a parameter it was sent. dicomhub
does so for every parameter it accepts but cannot honour in full, so that
nothing a client asks for is dropped unannounced; what it cannot understand at
all is a 400 instead (``dicomhub.qido.params``). The texts are ASCII, as
header field values should be (RFC 9110 §5.5), and name attributes, never
their values.
"""

from __future__ import annotations

from .keys import Level, describe
from .model import Search
from .results import ReturnFields

# Text VRs other than PN: a client could expect fuzzymatching to loosen them,
# but PS3.18 §8.3.4.2 fuzzy matching is for person names only.
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT"})

# The answer is always UTF-8 (PS3.18 F.2); these charset values accept it.
_UTF8 = frozenset({"utf-8", "utf8", "*"})

# PS3.18 §8.3.4.5 and §8.3.4.6 give these texts word for word.
EMPTY_VALUE_MATCHING = (
    "The emptyvaluematching parameter is not supported. "
    "Empty Value Matching has not been performed."
)
MULTIPLE_VALUE_MATCHING = (
    "The multiplevaluematching parameter is not supported. "
    "Multiple Value Matching has not been performed."
)


def search_warnings(search: Search, fields: ReturnFields) -> list[str]:
    """The warn-texts for `search`, without quotes; empty when all was done."""
    texts: list[str] = []

    literal = [m.key.tag for m in search.matches if m.key.vr in _TEXT_VRS]
    if search.fuzzy and literal:
        texts.append(
            "fuzzymatching applies to person names only (PS3.18 8.3.4.2); "
            f"matched literally: {_names(literal)}"
        )
    if search.empty_value_matching:
        texts.append(EMPTY_VALUE_MATCHING)
    if search.multiple_value_matching:
        texts.append(MULTIPLE_VALUE_MATCHING)
    if search.charsets and _UTF8.isdisjoint(search.charsets):
        texts.append(
            "the answer is UTF-8, the only charset offered (PS3.18 8.3.3.2, F.2)"
        )

    # Attributes of lower levels are not returned (PS3.18 §10.6.3.3); those
    # the index does not keep never are.
    lower: dict[Level, list[str]] = {}
    for dropped in fields.dropped:
        if dropped.level is not None:
            lower.setdefault(dropped.level, []).append(dropped.tag)
    for level, tags in lower.items():
        texts.append(
            f"a {search.level} search does not return {level} attributes "
            f"(PS3.18 10.6.3.3); not returned: {_names(tags)}"
        )
    unkept = [dropped.tag for dropped in fields.dropped if dropped.level is None]
    if unkept:
        texts.append(
            "the index does not keep bulk data, file meta information or "
            f"patient-level counts; not returned: {_names(unkept)}"
        )
    return texts


def _names(tags: list[str]) -> str:
    return ", ".join(describe(tag) for tag in tags)
