"""What "not covered" means for this index: how much evidence it finds for questions it cannot answer.

The evidence for a question is its best passage similarity (dense) plus a fifth of the share of its terms the
index knows at all (BM25 vocabulary): an off-topic question may come close in meaning to some passage ("Who painted the
Sistine Chapel?" to an essay about painting) but names things the documents never mention.

A fixed set of off-topic probe questions (cooking, sport, weather, law, ...) is run against the index once per
version of its contents, at index time; the evidence each probe gets is stored in the data folder, keyed by the
same fingerprint of the chunk ids as the BM25 files. A question is covered when its evidence stands clear of
the probes': a floor measured on this index, not one cosine constant chosen on one article (a corpus of short
technical passages sits closer to everything than a long essay does).

Like the BM25 side, the file is rebuilt whenever its fingerprint no longer matches the store, and written
atomically, so a crash leaves the previous calibration or none (then it is computed again).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.lexical import LexicalIndex
from index.protocols import Embedder, Store

FILE = "calibration.json"

#: Questions no document collection of a product, a paper or an article is likely to answer, over many topics,
#: so that no single topic of an index moves the statistics much.
PROBES = (
    "How long should pasta cook to be al dente?",
    "What is a good substitute for buttermilk in pancakes?",
    "Which team won the Stanley Cup in 1994?",
    "How many sets are played in a women's tennis final?",
    "What will the weather be like in Lisbon tomorrow?",
    "Why is the sky blue during the day?",
    "How do I get a fishing licence for a lake?",
    "What is the average lifespan of a house cat?",
    "How often should I water an orchid?",
    "What is the plot of the opera Carmen?",
    "Who directed the film Casablanca?",
    "How many strings does a classical guitar have?",
    "What is the speed of sound in air?",
    "How do volcanoes form along tectonic plates?",
    "What does a notary public do when witnessing a will?",
    "How is child custody decided after a divorce?",
    "What are the side effects of ibuprofen?",
    "How many hours of sleep does a teenager need?",
    "What is the best stretch for lower back pain?",
    "Which vitamins are found in spinach?",
    "How do I remove a red wine stain from a carpet?",
    "What is the dress code for a black tie wedding?",
    "How do I knit a scarf for beginners?",
    "What is the currency of Switzerland?",
    "Which river flows through Budapest?",
    "What is the highest waterfall in South America?",
    "When does the cherry blossom season start in Kyoto?",
    "How do migrating birds find their way south?",
    "What do giant pandas eat in the wild?",
    "How do you train a puppy to sit?",
    "What are the rules of chess castling?",
    "Who was the first woman to fly solo across the Atlantic?",
    "What happened at the Battle of Hastings?",
    "Which dynasty built the Forbidden City?",
    "How do I change a flat tyre on a bicycle?",
    "What is the fuel consumption of a diesel van?",
    "How do I book a train ticket from Paris to Milan?",
    "What should I pack for a week of hiking in the Alps?",
    "How do I write a cover letter for a nursing job?",
    "What is the difference between baking soda and baking powder?",
    "How many calories are in a banana?",
    "What is the tallest tree species in the world?",
    "Why do cats purr?",
    "How is olive oil produced from olives?",
    "What are the lyrics of the national anthem of Brazil?",
    "Who invented the telephone?",
    "How do tides depend on the moon?",
    "What is the recipe for a classic margarita?",
)

#: A question is covered when its evidence lies this many spreads (robust standard deviations) above the
#: probes' median. Robust statistics: a few probes that happen to touch the documents' topic move it little.
SPREADS = 4.0
#: Weight of the known-term share beside the similarity: enough to keep out a question near in meaning that
#: names things the documents never mention, small enough that a question's own wording does not decide.
KNOWN_WEIGHT = 0.2


def probes_digest(model_name: str) -> str:
    """Identifies the probes, the evidence formula and the model: a calibration made otherwise is stale."""
    key = "\n".join((model_name, f"known_weight={KNOWN_WEIGHT}", *PROBES))
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Calibration:
    """The evidence each probe got on one version of the index (sorted)."""

    fingerprint: str
    probes: str  # probes_digest of the probes and model used
    probe_evidence: tuple[float, ...]

    @property
    def floor(self) -> float:
        """The evidence a question needs to count as covered (above any possible one for an empty index)."""
        if not self.probe_evidence:
            return 3.0
        values = self.probe_evidence
        median = statistics.median(values)
        spread = statistics.median(abs(v - median) for v in values) * 1.4826  # MAD, scaled like a std
        return median + SPREADS * spread

    def to_json(self) -> str:
        return json.dumps(
            {"fingerprint": self.fingerprint, "probes": self.probes, "probe_evidence": self.probe_evidence}
        )

    @classmethod
    def load(cls, folder: Path) -> Calibration | None:
        """The stored calibration, or ``None`` when missing or unreadable (then it is computed again)."""
        try:
            data = json.loads((folder / FILE).read_text())
            return cls(str(data["fingerprint"]), str(data["probes"]), tuple(float(v) for v in data["probe_evidence"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{FILE}.{os.getpid()}.tmp"
        try:
            staging.write_text(self.to_json())
            os.replace(staging, folder / FILE)
        finally:
            staging.unlink(missing_ok=True)


def evidence(best_similarity: float, known_share: float) -> float:
    """How strongly the index bears on a question: its best passage similarity and the share of its terms the
    index knows."""
    return best_similarity + KNOWN_WEIGHT * known_share


def measure(store: Store, embedder: Embedder, lexical: LexicalIndex) -> Calibration:
    """Run the probes against the index (one embedding call, one search a probe)."""
    vectors = embedder.encode_queries(list(PROBES)) if store.count() else np.zeros((0, embedder.dimension))
    found = sorted(
        evidence(max((hit.similarity for hit in store.query(vector, 1)), default=-1.0), lexical.known_share(probe))
        for probe, vector in zip(PROBES, vectors, strict=False)
    )
    return Calibration(lexical.fingerprint, probes_digest(embedder.name), tuple(round(e, 6) for e in found))


def sync_calibration(store: Store, embedder: Embedder, lexical: LexicalIndex, folder: Path) -> Calibration:
    """The stored calibration when it matches the index (``lexical``'s fingerprint of the store's ids) and the
    probes, else a new one, stored."""
    stored = Calibration.load(folder)
    if (
        stored is not None
        and stored.fingerprint == lexical.fingerprint
        and stored.probes == probes_digest(embedder.name)
    ):
        return stored
    calibration = measure(store, embedder, lexical)
    calibration.save(folder)
    return calibration
