"""Accept parsing and negotiation: dicomhub.mediatypes."""

from __future__ import annotations

import pytest

from dicomhub.mediatypes import MediaRange, Wanted, acceptable, parse_accept

OCTET = "application/octet-stream"
FRAME_DEFAULT = Wanted(OCTET, (), True)


def frames_wanted(header: str | None) -> list[Wanted]:
    return acceptable(
        parse_accept(header),
        part_types=(OCTET, "image/jp2"),
        default=FRAME_DEFAULT,
    )


# The forms of cases/dicomweb/dicomweb-16-frame-accept-forms.md.
OHIF_FORMS = {
    "A1": "multipart/related; type=application/octet-stream; transfer-syntax=*",
    "A2": 'multipart/related; type="application/octet-stream"; transfer-syntax="*"',
    "A3": 'multipart/related; type="application/octet-stream"',
    "A4": "multipart/related; type=application/octet-stream",
    "A5": "multipart/related; type=application/octet-stream; "
    "transfer-syntax=1.2.840.10008.1.2.1; transfer-syntax=*",
    "A6": 'multipart/related;type="application/octet-stream";'
    "transfer-syntax=1.2.840.10008.1.2.1",
}
EXPECTED_SYNTAXES = {
    "A1": ("*",),
    "A2": ("*",),
    "A3": (),
    "A4": (),
    "A5": ("1.2.840.10008.1.2.1", "*"),
    "A6": ("1.2.840.10008.1.2.1",),
}


@pytest.mark.parametrize("form", sorted(OHIF_FORMS))
def test_dicomweb_16_frame_accept_forms_parse(form: str) -> None:
    """cases/dicomweb/dicomweb-16-frame-accept-forms.md: each form is understood."""
    wanted = frames_wanted(OHIF_FORMS[form])

    assert wanted == [Wanted(OCTET, EXPECTED_SYNTAXES[form], True)]


@pytest.mark.parametrize(
    "header", ['multipart/related; type="nope"', "multipart/related; type=nope", "nope"]
)
def test_dicomweb_16_unknown_types_fit_nothing(header: str) -> None:
    assert frames_wanted(header) == []


def test_missing_and_wildcard_accept_mean_the_default() -> None:
    assert frames_wanted(None) == [FRAME_DEFAULT]
    assert frames_wanted("") == [FRAME_DEFAULT]
    assert frames_wanted("*/*") == [FRAME_DEFAULT]
    assert frames_wanted("multipart/related") == [FRAME_DEFAULT]


def test_q_values_order_and_q_zero_refuses() -> None:
    header = (
        'multipart/related; type="application/octet-stream"; q=0.5, '
        'multipart/related; type="image/jp2"; transfer-syntax=*, '
        "*/*; q=0"
    )
    assert frames_wanted(header) == [
        Wanted("image/jp2", ("*",), True),
        Wanted(OCTET, (), True),
    ]


def test_quoted_values_keep_commas_and_semicolons() -> None:
    ranges = parse_accept('a/b; x="1,2;3", c/d; y="q\\"uote"')

    assert ranges == [
        MediaRange("a", "b", (("x", "1,2;3"),)),
        MediaRange("c", "d", (("y", 'q"uote'),)),
    ]


def test_names_are_case_insensitive_values_are_not() -> None:
    (media_range,) = parse_accept("Multipart/Related; TYPE=Application/Octet-Stream")

    assert media_range.essence == "multipart/related"
    assert media_range.param("type") == "Application/Octet-Stream"
    assert frames_wanted("Multipart/Related; TYPE=Application/Octet-Stream") == [
        FRAME_DEFAULT
    ]


def test_single_types_and_subtype_wildcards() -> None:
    def rendered(header: str) -> list[str]:
        wanted = acceptable(
            parse_accept(header),
            single_types=("image/jpeg", "image/png"),
            default=Wanted("image/jpeg", (), False),
        )
        return [w.media_type for w in wanted]

    assert rendered("image/png") == ["image/png"]
    assert rendered("image/*") == ["image/jpeg", "image/png"]
    assert rendered("image/png;q=0.4, image/jpeg") == ["image/jpeg", "image/png"]
    assert rendered("*/*") == ["image/jpeg"]
    assert rendered("image/gif") == []


def test_garbage_entries_are_skipped() -> None:
    assert parse_accept("text, ;;, image/png; q=abc, image/jpeg") == [
        MediaRange("image", "jpeg")
    ]


def test_wildcard_part_types_expand_in_preference_order() -> None:
    assert frames_wanted('multipart/related; type="*/*"') == [
        Wanted(OCTET, (), True),
        Wanted("image/jp2", (), True),
    ]
    assert frames_wanted("multipart/related; type=image/*; transfer-syntax=*") == [
        Wanted("image/jp2", ("*",), True)
    ]
