"""Putting an upload in place so that a failure loses nothing, and who may replace an uploaded document.

An upload is written beside the uploads folder first. Putting it in place keeps the version it replaces (a hard
link, or a copy where links are not possible) until the new version is indexed: :meth:`Staged.keep` then lets the
old one go, :meth:`Staged.undo` puts it back (or removes a new file), so a failed replacement leaves the old
document as it was, file and index (the index keeps a version until its successor is written).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bot.config import Settings
from bot.documents.indexed import UploadRefusedError

STAGING = "upload-staging"


@dataclass(frozen=True, slots=True)
class Staged:
    """A new file in the uploads folder, and the previous version of it while the new one is being indexed."""

    target: Path
    previous: Path | None

    def keep(self) -> None:
        """The new version is indexed: the previous one goes."""
        if self.previous is not None:
            self.previous.unlink(missing_ok=True)

    def undo(self) -> None:
        """The new version was not indexed: the previous one comes back (a new file goes)."""
        if self.previous is not None:
            os.replace(self.previous, self.target)
        else:
            self.target.unlink(missing_ok=True)


def stage_upload(source: BinaryIO, name: str, settings: Settings) -> Staged:
    """Put ``source`` in the uploads folder as ``name`` (already sanitised), keeping any previous version aside.

    Raises :class:`UploadRefusedError` for an empty file or one over ``max_upload_bytes``.
    """
    size = os.fstat(source.fileno()).st_size
    if size > settings.max_upload_bytes:
        raise UploadRefusedError(
            f"{name}: {size:,} bytes is over the upload limit of {settings.max_upload_bytes:,} bytes"
        )
    if size == 0:
        raise UploadRefusedError(f"{name}: the file is empty")
    folder = settings.uploads_dir.resolve()
    staging = (settings.data_dir / STAGING).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    target = (folder / name).resolve()
    if target.parent != folder:  # cannot happen after sanitising; kept as the last line of defence
        raise UploadRefusedError(f"{name}: refused, it would land outside the uploads folder")
    incoming = staging / f"{name}.new"
    with open(incoming, "wb") as out:
        shutil.copyfileobj(source, out)
    previous = None
    if target.is_file():
        previous = staging / f"{name}.previous"
        previous.unlink(missing_ok=True)
        try:
            os.link(target, previous)
        except OSError:
            shutil.copyfile(target, previous)
    os.replace(incoming, target)
    return Staged(target, previous)
