"""The attributes of each search result (PS3.18 §10.6.3.3).

A result holds the default attributes of its level; those of the levels above
it when the resource spans them (all series, a study's instances, all
instances), or else the UIDs the resource path names (as the Azure DICOM
service does); every match key and includefield attribute of its level or a
level above it; and with ``includefield=all`` the Azure service's list for its
level and every other attribute the index keeps there. An attribute the
response must carry but that has no value is sent as ``{"vr": ...}`` alone
(PS3.18 F.2.5). What was asked for but cannot be returned is listed in
`ReturnFields.dropped`, for the answer's Warning header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..index.query import Found, SearchPage
from .keys import (
    ALL_RETURN,
    DEFAULT_RETURN,
    INSTANCE_AVAILABILITY,
    LEVELS,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    RETRIEVE_URL,
    SPECIFIC_CHARACTER_SET,
    Level,
    attribute_level,
    is_kept,
    return_level,
    vr_of,
)
from .model import Search

STUDY_AGGREGATES = frozenset(
    {
        MODALITIES_IN_STUDY,
        NUMBER_OF_STUDY_RELATED_SERIES,
        NUMBER_OF_STUDY_RELATED_INSTANCES,
    }
)


@dataclass(frozen=True)
class Dropped:
    """A requested attribute that is not returned: `level` is the lower level
    it belongs to, or None when the index does not keep it at all."""

    tag: str
    level: Level | None


@dataclass(frozen=True)
class ReturnFields:
    """Per level, the tags to return: True if always present, False if only
    when known; `include_all` names the level whose every attribute goes;
    `dropped` the requested attributes that are not returned."""

    levels: dict[Level, dict[str, bool]]
    include_all: Level | None
    dropped: tuple[Dropped, ...] = field(default=())

    @property
    def study_aggregates(self) -> bool:
        return not STUDY_AGGREGATES.isdisjoint(self.levels.get("study", {}))

    @property
    def series_aggregates(self) -> bool:
        return NUMBER_OF_SERIES_RELATED_INSTANCES in self.levels.get("series", {})


def return_fields(search: Search) -> ReturnFields:
    own = dict(DEFAULT_RETURN[search.level])
    if search.include_all:
        for tag, required in ALL_RETURN[search.level].items():
            own[tag] = required or own.get(tag, False)
    levels: dict[Level, dict[str, bool]] = {search.level: own}

    # PS3.18 §10.6.3.3.2-3: a resource that spans the levels above its own
    # (All Series; Study's Instances; All Instances) returns their defaults;
    # one below a given study or series returns its UID (Azure: "UIDs in the
    # resource url").
    if search.level != "study":
        if search.study_uid is None:
            levels["study"] = dict(DEFAULT_RETURN["study"])
        else:
            levels["study"] = {"0020000D": True}
    if search.level == "instance":
        if search.series_uid is None:
            levels["series"] = dict(DEFAULT_RETURN["series"])
        else:
            levels["series"] = {"0020000E": True}

    # Match keys and includefield attributes of this level or one above;
    # those of lower levels are left out (PS3.18 §10.6.3.3.1), and so is what
    # the index does not keep.
    depth = LEVELS.index(search.level)
    dropped: list[Dropped] = []
    for tag in sorted(search.returned):
        level = return_level(tag, search.level)
        if not is_kept(tag):
            dropped.append(Dropped(tag, None))
        elif LEVELS.index(level) <= depth:
            levels.setdefault(level, {})[tag] = True
        else:
            dropped.append(Dropped(tag, level))

    return ReturnFields(
        levels, search.level if search.include_all else None, tuple(dropped)
    )


def build_item(
    found: Found, fields: ReturnFields, page: SearchPage, root: str
) -> dict[str, Any]:
    """The DICOM JSON object of one result; `root` is the DICOMweb root URL."""
    item: dict[str, Any] = {}
    charset: bool | None = None  # SpecificCharacterSet: None if not wanted

    # From the top down, so that RetrieveURL and the like of the result's own
    # level replace those of the levels above it.
    for level in LEVELS:
        wanted = fields.levels.get(level)
        if wanted is None:
            continue
        attrs = _attrs(found, level)
        if fields.include_all == level:
            item.update(attrs)
        for tag, required in wanted.items():
            if tag == SPECIFIC_CHARACTER_SET:
                charset = bool(charset) or required
                continue
            value = _computed(tag, level, found, page, root)
            if value is None:
                value = attrs.get(tag)
            kept_at = attribute_level(tag)
            if value is None and LEVELS.index(kept_at) < LEVELS.index(level):
                # Kept with a level above, such as TimezoneOffsetFromUTC with
                # the study, which every level's results carry.
                value = _attrs(found, kept_at).get(tag)
            if value is None and required:
                vr = vr_of(tag)
                value = {"vr": vr} if vr else None
            if value is not None:
                item[tag] = value

    # The JSON is UTF-8 (PS3.18 F.2); SpecificCharacterSet says so when asked
    # for, and by default when the text goes beyond ASCII (Type 1C).
    if charset or (charset is not None and not _is_ascii(item)):
        item[SPECIFIC_CHARACTER_SET] = {"vr": "CS", "Value": ["ISO_IR 192"]}
    return dict(sorted(item.items()))


def _is_ascii(item: dict[str, Any]) -> bool:
    return json.dumps(item, ensure_ascii=False).isascii()


def _attrs(found: Found, level: Level) -> dict[str, Any]:
    if level == "study":
        return found.study_attrs
    if level == "series":
        return found.series_attrs or {}
    return found.instance_attrs or {}


def _retrieve_url(found: Found, level: Level, root: str) -> str:
    # PS3.18 §10.4.1: the WADO-RS URL of the study, series or instance.
    url = f"{root}/studies/{found.study_instance_uid}"
    if level in ("series", "instance"):
        url += f"/series/{found.series_instance_uid}"
    if level == "instance":
        url += f"/instances/{found.sop_instance_uid}"
    return url


def _computed(
    tag: str, level: Level, found: Found, page: SearchPage, root: str
) -> dict[str, Any] | None:
    """Attributes the server knows better than the stored instances do."""
    if tag == RETRIEVE_URL:
        return {"vr": "UR", "Value": [_retrieve_url(found, level, root)]}
    if tag == INSTANCE_AVAILABILITY:
        # Everything indexed is stored on line (PS3.3 C.4.23.1.1).
        return {"vr": "CS", "Value": ["ONLINE"]}
    if tag in STUDY_AGGREGATES:
        aggregate = page.studies.get(found.study_pk)
        if aggregate is None:
            return None
        if tag == MODALITIES_IN_STUDY:
            modalities = aggregate.modalities
            return {"vr": "CS", "Value": modalities} if modalities else {"vr": "CS"}
        count = (
            aggregate.series
            if tag == NUMBER_OF_STUDY_RELATED_SERIES
            else aggregate.instances
        )
        return {"vr": "IS", "Value": [count]}
    if tag == NUMBER_OF_SERIES_RELATED_INSTANCES and found.series_pk is not None:
        return {"vr": "IS", "Value": [page.series_instances.get(found.series_pk, 0)]}
    if tag == "0020000D":
        return {"vr": "UI", "Value": [found.study_instance_uid]}
    if tag == "0020000E" and found.series_instance_uid:
        return {"vr": "UI", "Value": [found.series_instance_uid]}
    if tag == "00080018" and found.sop_instance_uid:
        return {"vr": "UI", "Value": [found.sop_instance_uid]}
    return None
