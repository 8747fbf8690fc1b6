"""The BM25 side of hybrid search (``bm25s``), persisted beside the vector store.

Each build goes into its own folder named by a fingerprint of the chunk ids; a ``CURRENT`` file,
replaced atomically, points at the live one. A crash mid-build leaves the previous index in place,
and a fingerprint that no longer matches the store tells the caller to rebuild.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import LexicalIndexError

if TYPE_CHECKING:
    from index.protocols import Store

CURRENT = "CURRENT"
#: Held while saving, so that two writers (an index run and a server refreshing) never mix their files.
LOCK = ".lock"
#: Questions whose terms one index keeps ready: a search and its coverage check tokenize a question once.
TERMS_CACHE = 64
#: BM25's term-frequency saturation (``bm25s``' default 1.5) and length normalisation (its default 0.75). Chunks are
#: cut to one target length, so the length a chunk has says little about how focused it is: normalisation is kept
#: weak, and a term's repeats count a little longer. Measured on the public eval sets (docs/eval.md).
K1 = 2.0
B = 0.4


def fingerprint(ids: Iterable[str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode("ascii", "replace"))
        digest.update(b"\n")
    return digest.hexdigest()


def current_fingerprint(folder: Path) -> str | None:
    """The fingerprint ``CURRENT`` names, if it can be read."""
    try:
        return (folder / CURRENT).read_text().strip()
    except OSError:
        return None


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], stemmer: Any) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)


@dataclass(frozen=True, slots=True)
class LexicalHit:
    id: str
    score: float


class LexicalIndex:
    """BM25 over the same chunks as the vector store, addressed by chunk id."""

    def __init__(self, ids: list[str], retriever: Any, fingerprint_: str) -> None:
        self.ids = ids
        self.fingerprint = fingerprint_
        self._retriever = retriever
        self._stemmer = _stemmer()
        self._terms = functools.lru_cache(maxsize=TERMS_CACHE)(self._tokenize)

    @property
    def parameters(self) -> tuple[float, float] | None:
        """The (k1, b) this index was scored with; None for an empty index (nothing scored)."""
        if self._retriever is None:
            return None
        return float(self._retriever.k1), float(self._retriever.b)

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], *, k1: float = K1, b: float = B) -> LexicalIndex:
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        if ids:
            retriever.index(tokenize(texts, _stemmer()), show_progress=False)
        return cls(list(ids), retriever if ids else None, fingerprint(ids))

    def save(self, folder: Path) -> None:
        """Write to ``folder/<fingerprint>/`` then switch ``CURRENT`` to it in one atomic rename."""
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            self._save(folder)

    def _save(self, folder: Path) -> None:
        staging = folder / f".{self.fingerprint}.{os.getpid()}.tmp"
        pointer = folder / f".{CURRENT}.{os.getpid()}.tmp"
        try:
            self._write(folder, staging, pointer)
        except BaseException:  # a full disk, say: the live index stays, and nothing of this attempt is left
            shutil.rmtree(staging, ignore_errors=True)
            pointer.unlink(missing_ok=True)
            if current_fingerprint(folder) != self.fingerprint:
                shutil.rmtree(folder / self.fingerprint, ignore_errors=True)
            raise
        for stale in folder.iterdir():
            if stale.name not in (CURRENT, LOCK, self.fingerprint):
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)

    def _write(self, folder: Path, staging: Path, pointer: Path) -> None:
        target = folder / self.fingerprint
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        if self._retriever is not None:
            self._retriever.save(str(staging))
        (staging / "ids.json").write_text(json.dumps(self.ids))
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        pointer.write_text(self.fingerprint)
        with open(pointer, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, folder / CURRENT)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        try:
            name = (folder / CURRENT).read_text().strip()
            target = folder / name
            ids = json.loads((target / "ids.json").read_text())
            if not isinstance(ids, list) or fingerprint(ids) != name:
                raise LexicalIndexError(f"BM25 files in {target} do not match their fingerprint")
            retriever = bm25s.BM25.load(str(target)) if ids else None
        except LexicalIndexError:
            raise
        except Exception as exc:  # missing, truncated or garbled files all mean the same: rebuild
            raise LexicalIndexError(f"BM25 files in {folder} are missing or damaged ({type(exc).__name__})") from exc
        if retriever is not None and retriever.scores.get("num_docs", len(ids)) != len(ids):
            raise LexicalIndexError(f"BM25 files in {folder} disagree with their id list")
        return cls(ids, retriever, name)

    def _tokenize(self, query: str) -> tuple[str, ...]:
        return tuple(tokenize([query], self._stemmer)[0])

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[LexicalHit]:
        """Top-``k`` chunks by BM25 score; chunks sharing no term with the query are left out, and so are those
        ``mask`` (one boolean a chunk, in ``ids`` order) rules out, before the top ``k`` are taken."""
        if self._retriever is None or not self.ids:
            return []
        scores = self._scores(
            [self._retriever.vocab_dict[t] for t in self._terms(query) if t in self._retriever.vocab_dict]
        )
        if scores is None:
            return []
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        top = min(k, len(scores))
        best = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [LexicalHit(self.ids[int(doc)], float(scores[doc])) for doc in best if scores[doc] > 0]

    def _scores(self, term_ids: list[int]) -> np.ndarray | None:
        """Every chunk's BM25 score for the query terms ``term_ids`` (repeats count again, as in ``bm25s``), summed
        from the terms' rows of the precomputed score matrix in one ``bincount``; ``None`` for no known term."""
        if not term_ids:
            return None
        matrix = self._retriever.scores
        starts, ends = matrix["indptr"][term_ids], matrix["indptr"][np.asarray(term_ids) + 1]
        docs = np.concatenate([matrix["indices"][lo:hi] for lo, hi in zip(starts, ends, strict=True)])
        weights = np.concatenate([matrix["data"][lo:hi] for lo, hi in zip(starts, ends, strict=True)])
        scores = np.bincount(docs, weights=weights, minlength=int(matrix["num_docs"]))
        if self._retriever.nonoccurrence_array is not None:  # BM25 variants that score absent terms too
            scores += float(self._retriever.nonoccurrence_array[term_ids].sum())
        return scores


def sync_lexical(
    store: Store, folder: Path, *, force: bool = False, without: Collection[str] = frozenset()
) -> LexicalIndex:
    """The BM25 index, rebuilt from the store when missing, damaged, out of step with it or scored with other
    parameters than :data:`K1` and :data:`B` (an index built before they changed: rebuilt once, from the stored
    texts).

    ``without``: chunks about to be deleted from the store, left out of a forced rebuild.
    """
    if not force:
        try:
            lexical = LexicalIndex.load(folder)
        except LexicalIndexError:
            lexical = None
        if (
            lexical is not None
            and lexical.fingerprint == fingerprint(store.ids())
            and lexical.parameters in (None, (K1, B))
        ):
            return lexical
    ids: list[str] = []
    texts: list[str] = []
    for chunk_id, text, _ in store.iter_all(with_text=True):
        if chunk_id not in without:
            ids.append(chunk_id)
            texts.append(text or "")
    lexical = LexicalIndex.build(ids, texts)
    lexical.save(folder)
    return lexical
