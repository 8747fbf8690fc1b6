"""Metadata filters: source path prefix, file type, tag and modification date.

At index time every chunk gets ``type`` (the file's suffix without the dot), ``folders`` (each folder its source
path lies in: ``policies/``, ``policies/hr/``), ``tags`` (Markdown front matter ``tags:``, the parent folder's name
and ``docbot index --tag``) and ``modified`` (the file's modification time, seconds since 1970). A :class:`Filter`
becomes a Chroma ``where`` for the dense side and a mask over the BM25 corpus for the lexical side (see
:class:`FilterTable`), so both lists are filtered before their top-k and fusion never mixes the two.

An index built before filters existed gets these fields on its next ``docbot index`` run, without embedding
anything again (:func:`fields_for`, from the source path and the file on disk; front matter tags need the file to be
indexed again, which any change to it does).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from index.lru import BoundedLRU

#: The metadata keys this module adds to a chunk.
FIELDS = ("type", "folders", "tags", "modified")
KEYS = ("path", "type", "tag", "after", "before")
_TAG = re.compile(r"[\w][\w.-]{0,63}")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
#: Front matter longer than this is not read for tags (a file that opens with ``---`` and never closes it).
MAX_FRONT_MATTER = 16_384
#: Values one filter may hold in all (each becomes a clause of the Chroma query).
MAX_VALUES = 20
#: Bytes of masks a :class:`FilterTable` keeps unless told otherwise (the setting filter_cache_mb's default).
CACHE_BYTES = 64 * 1024 * 1024


class FilterError(ValueError):
    """A filter that cannot be used; the message says what a filter looks like."""


HELP = (
    "a filter is comma-separated key=value pairs, keys path, type, tag, after, before "
    "(e.g. type=pdf,tag=hr,path=policies/,after=2025-01-01), or the same as a JSON object"
)


def _tag(value: str) -> str | None:
    value = value.strip().lower()
    return value if _TAG.fullmatch(value) else None


def front_matter_tags(text: str) -> list[str]:
    """The ``tags:`` of a Markdown file's YAML front matter (a list or a comma-separated string)."""
    match = _FRONT_MATTER.match(text[: MAX_FRONT_MATTER + 8])
    if not match:
        return []
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return []
    raw = data.get("tags") if isinstance(data, dict) else None
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return [t for t in (_tag(str(item)) for item in items) if t]


def fields_for(source: str, path: Path | None, extra_tags: Iterable[str] = (), text: str = "") -> dict[str, Any]:
    """The filter fields of a chunk of file ``source`` (at ``path`` on disk, if there), as Chroma metadata."""
    posix = PurePosixPath(source)
    parents = list(reversed(posix.parents))[1:]  # without "."
    tags = [*front_matter_tags(text), *(t for t in map(_tag, extra_tags) if t)]
    folder_name = path.parent.name if path is not None else parents[-1].name if parents else ""
    if folder_name and (folder := _tag(folder_name)):
        tags.append(folder)
    fields: dict[str, Any] = {"type": posix.suffix.lower().lstrip(".")}
    if parents:
        fields["folders"] = [f"{p.as_posix()}/" for p in parents]
    if tags:
        fields["tags"] = list(dict.fromkeys(tags))
    try:
        fields["modified"] = int(path.stat().st_mtime) if path is not None else 0
    except OSError:
        fields["modified"] = 0
    return fields


def _day(value: str, key: str) -> int:
    try:
        return int(datetime.combine(date.fromisoformat(value.strip()), datetime.min.time(), UTC).timestamp())
    except ValueError:
        raise FilterError(f"{key}={value!r}: a date like 2025-01-31") from None


@dataclass(frozen=True, slots=True)
class Filter:
    """Which chunks a search may return: all conditions hold; a repeated key (``type=pdf,type=md``) is any of them."""

    paths: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    after: int | None = None  # modified at or after (seconds since 1970)
    before: int | None = None  # modified before

    @classmethod
    def parse(cls, text: str) -> Filter:
        """``type=pdf,tag=hr,path=policies/,after=2025-01-01`` or the JSON object ``{"type": "pdf", ...}``."""
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise FilterError(f"the filter is not valid JSON; {HELP}") from None
            return cls.of(data)
        pairs: dict[str, list[str]] = defaultdict(list)
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = part.partition("=")
            if not eq:
                raise FilterError(f"{part!r} is not key=value; {HELP}")
            pairs[key.strip().lower()].append(value.strip())
        return cls.of(pairs)

    @classmethod
    def of(cls, data: object) -> Filter:
        """From a mapping of key → a value or a list of values (the API's JSON filter)."""
        if not isinstance(data, Mapping):
            raise FilterError(HELP)
        unknown = sorted(str(k) for k in data if k not in KEYS)
        if unknown:
            raise FilterError(f"unknown filter key {', '.join(unknown)}; {HELP}")
        values: dict[str, list[str]] = {}
        for key, value in data.items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(item, str) and item.strip() and len(item) <= 200 for item in items) or not items:
                raise FilterError(f"{key}: a non-empty text (or a list of them) of at most 200 characters")
            values[key] = [item.strip() for item in items]
        if sum(len(items) for items in values.values()) > MAX_VALUES:
            raise FilterError(f"a filter holds at most {MAX_VALUES} values")
        if any(not p.strip("/") for p in values.get("path", [])):
            raise FilterError("path: a folder like policies/ or a file like policies/leave.md")
        for key in ("after", "before"):
            if len(values.get(key, [])) > 1:
                raise FilterError(f"{key} may be given once")
        types = tuple(t.lower().lstrip(".") for t in values.get("type", []))
        tags = tuple(t.lower() for t in values.get("tag", []))
        paths = tuple(p.strip("/") for p in values.get("path", []))
        after, before = values.get("after"), values.get("before")
        return cls(
            paths,
            types,
            tags,
            _day(after[0], "after") if after else None,
            _day(before[0], "before") if before else None,
        )

    @property
    def empty(self) -> bool:
        return not (self.paths or self.types or self.tags or self.after is not None or self.before is not None)

    def describe(self) -> str:
        parts = [f"path={p}/" for p in self.paths] + [f"type={t}" for t in self.types]
        parts += [f"tag={t}" for t in self.tags]
        day = lambda s: datetime.fromtimestamp(s, UTC).date().isoformat()  # noqa: E731
        parts += [f"after={day(self.after)}"] if self.after is not None else []
        parts += [f"before={day(self.before)}"] if self.before is not None else []
        return ",".join(parts)

    def chroma_where(self) -> dict[str, Any] | None:
        """The same conditions as a Chroma ``where`` (None: no condition)."""
        clauses: list[dict[str, Any]] = []
        if self.paths:
            clauses.append(
                _any(
                    [{"folders": {"$contains": f"{p}/"}} for p in self.paths] + [{"source": {"$in": list(self.paths)}}]
                )
            )
        if self.types:
            clauses.append({"type": {"$in": list(self.types)}})
        if self.tags:
            clauses.append(_any([{"tags": {"$contains": t}} for t in self.tags]))
        if self.after is not None:
            clauses.append({"modified": {"$gte": self.after}})
        if self.before is not None:
            clauses.append({"modified": {"$lt": self.before}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _any(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


class FilterTable:
    """The filter fields of the BM25 corpus, in its order, as arrays: a filter becomes a boolean mask in a few
    vectorised steps (the masks per path, type and tag are kept, the least recently used dropped first once they
    hold ``cache_bytes``: a caller asking with ever new values cannot grow them)."""

    def __init__(
        self, ids: list[str], metadata: Mapping[str, Mapping[str, Any]], cache_bytes: int = CACHE_BYTES
    ) -> None:
        n = len(ids)
        self.size = n
        self._by: dict[str, dict[str, list[int]]] = {"folders": defaultdict(list), "tags": defaultdict(list)}
        self._source: dict[str, list[int]] = defaultdict(list)
        self._type: dict[str, list[int]] = defaultdict(list)
        self._modified = np.zeros(n, dtype=np.int64)
        for row, chunk_id in enumerate(ids):
            meta = metadata.get(chunk_id, {})
            source = str(meta.get("source", ""))
            derived = fields_for(source, None) if "type" not in meta else {}
            self._source[source].append(row)
            self._type[str(meta.get("type", derived.get("type", "")))].append(row)
            for key in ("folders", "tags"):
                for value in meta.get(key, derived.get(key)) or []:
                    self._by[key][str(value)].append(row)
            self._modified[row] = int(meta.get("modified") or 0)
        self._masks: BoundedLRU[tuple[str, str], np.ndarray] = BoundedLRU(cache_bytes, lambda mask: mask.nbytes)
        self.rows = {chunk_id: row for row, chunk_id in enumerate(ids)}

    @property
    def cached_bytes(self) -> int:
        """The bytes of the masks kept now."""
        return self._masks.held

    def _rows(self, kind: str, value: str) -> np.ndarray:
        key = (kind, value)
        mask = self._masks.get(key)
        if mask is None:
            mask = np.zeros(self.size, dtype=bool)
            table = {"type": self._type, "source": self._source}.get(kind) or self._by[kind]
            mask[table.get(value, [])] = True
            self._masks.put(key, mask)
        return mask

    def mask(self, where: Filter) -> np.ndarray:
        keep = np.ones(self.size, dtype=bool)
        if where.paths:
            keep &= np.logical_or.reduce(
                [self._rows("folders", f"{p}/") | self._rows("source", p) for p in where.paths]
            )
        if where.types:
            keep &= np.logical_or.reduce([self._rows("type", t) for t in where.types])
        if where.tags:
            keep &= np.logical_or.reduce([self._rows("tags", t) for t in where.tags])
        if where.after is not None:
            keep &= self._modified >= where.after
        if where.before is not None:
            keep &= self._modified < where.before
        return keep


def chips(metadata: Iterable[Mapping[str, Any]], limit: int = 40) -> list[str]:
    """The filters worth offering for these chunks, as ``key=value`` chips: each file type, tag and top folder."""
    found: dict[str, set[str]] = {"type": set(), "tag": set(), "path": set()}
    for meta in metadata:
        derived = fields_for(str(meta.get("source", "")), None) if "type" not in meta else meta
        if derived.get("type"):
            found["type"].add(str(derived["type"]))
        found["tag"].update(str(tag) for tag in derived.get("tags") or [])
        found["path"].update(str(folder) for folder in (derived.get("folders") or [])[:1])
    return [f"{key}={value}" for key in ("type", "tag", "path") for value in sorted(found[key])][:limit]
