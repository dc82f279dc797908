"""The attributes of each search result (PS3.18 §10.6.3.3).

A result holds the default attributes of its level; those of the levels above
it when the resource spans them (all series, a study's instances, all
instances); every match key and includefield attribute of its level or a
level above it; and with ``includefield=all`` every attribute of its level.
An attribute the response must carry but that has no value is sent as
``{"vr": ...}`` alone (PS3.18 F.2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..index.query import Found, SearchPage
from .keys import (
    DEFAULT_RETURN,
    INSTANCE_AVAILABILITY,
    LEVELS,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    RETRIEVE_URL,
    Level,
    attribute_level,
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
class ReturnFields:
    """Per level, the tags to return: True if always present, False if only
    when known; `include_all` names the level whose every attribute goes."""

    levels: dict[Level, dict[str, bool]]
    include_all: Level | None

    @property
    def study_aggregates(self) -> bool:
        return not STUDY_AGGREGATES.isdisjoint(self.levels.get("study", {}))

    @property
    def series_aggregates(self) -> bool:
        return NUMBER_OF_SERIES_RELATED_INSTANCES in self.levels.get("series", {})


def return_fields(search: Search) -> ReturnFields:
    levels: dict[Level, dict[str, bool]] = {
        search.level: dict(DEFAULT_RETURN[search.level])
    }

    # PS3.18 §10.6.3.3.2-3: a resource that spans the levels above its own
    # (All Series; Study's Instances; All Instances) returns their defaults.
    if search.level != "study" and search.study_uid is None:
        levels["study"] = dict(DEFAULT_RETURN["study"])
    if search.level == "instance" and search.series_uid is None:
        levels["series"] = dict(DEFAULT_RETURN["series"])

    # Match keys and includefield attributes of this level or one above;
    # those of lower levels are left out (PS3.18 §10.6.3.3.1).
    depth = LEVELS.index(search.level)
    for tag in search.returned:
        level = attribute_level(tag)
        if LEVELS.index(level) <= depth:
            levels.setdefault(level, {})[tag] = True

    return ReturnFields(levels, search.level if search.include_all else None)


def build_item(
    found: Found, fields: ReturnFields, page: SearchPage, root: str
) -> dict[str, Any]:
    """The DICOM JSON object of one result; `root` is the DICOMweb root URL."""
    item: dict[str, Any] = {}

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
            value = _computed(tag, level, found, page, root)
            if value is None:
                value = attrs.get(tag)
            if value is None and required:
                vr = vr_of(tag)
                value = {"vr": vr} if vr else None
            if value is not None:
                item[tag] = value
    return dict(sorted(item.items()))


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
