"""A reproducible corpus of prose documents, sized in chunks, and questions to ask it.

Documents are English prose built from topic word lists and sentence templates by a seeded
``random.Random``: headings, paragraphs of varying length, questions, quotations, numbers and
bullet lists, as Markdown and plain-text files in nested folders. The same seed always gives the
same files, and a smaller corpus is the start of a larger one (same file names, same texts), except
for its last file, which is cut to land on the asked number of chunks.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.chunking import Chunker
from index.loaders import normalise_text
from index.types import Document

SEED = 20240611
MANIFEST = "corpus.json"
FILES_PER_FOLDER = 500


@dataclass(frozen=True, slots=True)
class Topic:
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    places: tuple[str, ...]
    roles: tuple[str, ...]
    orgs: tuple[str, ...]


#: (base, past, past participle, third person)
VERBS: tuple[tuple[str, str, str, str], ...] = (
    ("review", "reviewed", "reviewed", "reviews"),
    ("replace", "replaced", "replaced", "replaces"),
    ("inspect", "inspected", "inspected", "inspects"),
    ("approve", "approved", "approved", "approves"),
    ("reduce", "reduced", "reduced", "reduces"),
    ("expand", "expanded", "expanded", "expands"),
    ("measure", "measured", "measured", "measures"),
    ("report", "reported", "reported", "reports"),
    ("protect", "protected", "protected", "protects"),
    ("delay", "delayed", "delayed", "delays"),
    ("support", "supported", "supported", "supports"),
    ("move", "moved", "moved", "moves"),
    ("build", "built", "built", "builds"),
    ("choose", "chose", "chosen", "chooses"),
    ("find", "found", "found", "finds"),
    ("keep", "kept", "kept", "keeps"),
    ("lead", "led", "led", "leads"),
    ("write", "wrote", "written", "writes"),
    ("test", "tested", "tested", "tests"),
    ("store", "stored", "stored", "stores"),
    ("fund", "funded", "funded", "funds"),
    ("limit", "limited", "limited", "limits"),
    ("monitor", "monitored", "monitored", "monitors"),
    ("recover", "recovered", "recovered", "recovers"),
)

TOPICS: dict[str, Topic] = {
    "water supply": Topic(
        nouns=("reservoir", "pipeline", "pump", "valve", "treatment plant", "meter", "aquifer", "filter", "well"),
        adjectives=("municipal", "ageing", "seasonal", "upstream", "chlorinated", "pressurised", "rural"),
        places=("the northern district", "Millbrook", "the river valley", "the old town", "Eastfield"),
        roles=("chief engineer", "water inspector", "plant manager", "council member"),
        orgs=("the Regional Water Board", "Millbrook Utilities", "the Environment Agency"),
    ),
    "rail transport": Topic(
        nouns=("timetable", "locomotive", "signal", "platform", "carriage", "junction", "depot", "ticket office"),
        adjectives=("overnight", "electrified", "regional", "delayed", "single-track", "refurbished", "busy"),
        places=("Carlow Junction", "the coastal line", "Harwood station", "the central depot", "the mountain pass"),
        roles=("station master", "signal engineer", "operations director", "union representative"),
        orgs=("Northern Rail Services", "the Transport Ministry", "the Passenger Council"),
    ),
    "hospital care": Topic(
        nouns=("ward", "clinic", "vaccine", "nurse", "patient record", "operating theatre", "ambulance", "trial"),
        adjectives=("paediatric", "outpatient", "emergency", "clinical", "understaffed", "specialist", "new"),
        places=("St Anne's Hospital", "the west wing", "Fairview clinic", "the county", "the children's ward"),
        roles=("head nurse", "medical director", "surgeon", "health minister"),
        orgs=("the Health Trust", "the Nursing Council", "Fairview Medical Group"),
    ),
    "farming": Topic(
        nouns=("harvest", "orchard", "tractor", "grain store", "irrigation channel", "herd", "seed bank", "barn"),
        adjectives=("organic", "drought-hit", "terraced", "cooperative", "late", "fertile", "family-run"),
        places=("the lowland farms", "Ashby", "the southern plain", "the hill country", "Greenway valley"),
        roles=("farm manager", "agronomist", "cooperative chair", "veterinary officer"),
        orgs=("the Farmers' Union", "Greenway Cooperative", "the Agriculture Department"),
    ),
    "software release": Topic(
        nouns=("release", "database", "server", "build pipeline", "feature flag", "backup", "dashboard", "patch"),
        adjectives=("nightly", "encrypted", "legacy", "distributed", "stable", "experimental", "cached"),
        places=("the Dublin data centre", "the staging cluster", "the eu-west region", "the main office"),
        roles=("release manager", "site reliability engineer", "product owner", "security lead"),
        orgs=("the platform team", "Brightline Software", "the security working group"),
    ),
    "city archives": Topic(
        nouns=("archive", "manuscript", "map", "ledger", "photograph", "charter", "catalogue", "reading room"),
        adjectives=("medieval", "fragile", "digitised", "handwritten", "restored", "rare", "municipal"),
        places=("the city library", "the old guildhall", "Kingsbridge", "the east archive", "the cathedral close"),
        roles=("archivist", "historian", "conservator", "museum curator"),
        orgs=("the Historical Society", "Kingsbridge Council", "the National Archive"),
    ),
}

CONNECTIVES = ("However", "Meanwhile", "As a result", "In addition", "By contrast", "Later that year", "At first")
TIMES = ("last spring", "in the winter of {year}", "during {year}", "after the {year} review", "early in {year}")
REASONS = ("costs had risen", "demand kept growing", "an audit found gaps", "the weather turned", "staff were short")
HEADINGS = ("Background", "What changed", "Costs and funding", "Open questions", "Timeline", "Lessons learned")


def _plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}".strip()


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


class ProseWriter:
    """Sentences, paragraphs and documents about one topic at a time, from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _year(self) -> int:
        return self.rng.randint(1987, 2024)

    def _phrase(self, topic: Topic) -> str:
        noun = self.rng.choice(topic.nouns)
        return f"{self.rng.choice(topic.adjectives)} {noun}" if self.rng.random() < 0.6 else noun

    def _clause(self, topic: Topic) -> str:
        rng = self.rng
        base, past, participle, third = rng.choice(VERBS)
        subject = f"the {self._phrase(topic)}"
        obj = f"the {self._phrase(topic)}"
        where = rng.choice(topic.places)
        forms = (
            f"{subject} {past} {obj} in {where}",
            f"{_plural(self._phrase(topic))} were {participle} near {where}",
            f"{rng.choice(topic.orgs)} {third} {obj} every {rng.choice(('week', 'month', 'quarter', 'season'))}",
            f"the {rng.choice(topic.roles)} had to {base} {obj} {rng.choice(TIMES).format(year=self._year())}",
            f"{subject} could not {base} {obj} because {rng.choice(REASONS)}",
        )
        return rng.choice(forms)

    def sentence(self, topic: Topic) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.35:
            text = self._clause(topic)
        elif kind < 0.5:
            text = f"{rng.choice(CONNECTIVES)}, {self._clause(topic)}"
        elif kind < 0.62:
            text = f"{self._clause(topic)}, and {self._clause(topic)}"
        elif kind < 0.72:
            text = f"Because {rng.choice(REASONS)}, {self._clause(topic)}"
        elif kind < 0.8:
            share, things = rng.randint(3, 97), _plural(rng.choice(topic.nouns))
            where, done = rng.choice(topic.places), rng.choice(VERBS)[2]
            text = f"In {self._year()}, about {share} per cent of the {things} in {where} were {done}"
        elif kind < 0.88:
            role, org = rng.choice(topic.roles), rng.choice(topic.orgs)
            return f'"{self._clause(topic).capitalize()}," said the {role} of {org}.'
        elif kind < 0.93:
            org, base, where = rng.choice(topic.orgs), rng.choice(VERBS)[0], rng.choice(topic.places)
            return f"Why did {org} {base} {_article(self._phrase(topic))} in {where}?"
        else:
            feeling = rng.choice(("surprised", "worried", "pleased"))
            text = f"{self._clause(topic)}, which {feeling} the {rng.choice(topic.roles)}"
        return text[0].upper() + text[1:] + "."

    def paragraph(self, topic: Topic) -> str:
        rng = self.rng
        if rng.random() < 0.08:
            return "\n".join(
                f"- {self._phrase(topic).capitalize()}: {self._clause(topic)}." for _ in range(rng.randint(3, 6))
            )
        return " ".join(self.sentence(topic) for _ in range(rng.randint(2, 9)))

    def document(self) -> tuple[str, str, list[str]]:
        """(topic, title, blocks): a heading or paragraph per block."""
        rng = self.rng
        name = rng.choice(sorted(TOPICS))
        topic = TOPICS[name]
        title = f"{self._phrase(topic).capitalize()} in {rng.choice(topic.places)}"
        blocks: list[str] = []
        # Lengths vary from a note of one paragraph to a report of dozens.
        paragraphs = max(1, min(120, int(rng.lognormvariate(2.0, 0.9))))
        for i in range(paragraphs):
            if i and rng.random() < 0.15:
                blocks.append(f"## {rng.choice(HEADINGS)}")
            blocks.append(self.paragraph(topic))
        return name, title, blocks


@dataclass(frozen=True, slots=True)
class CorpusInfo:
    folder: Path
    files: int
    chunks: int
    characters: int


def _render(index: int, title: str, blocks: list[str]) -> tuple[str, str]:
    """(relative path, file text); every third file is plain text, the rest Markdown."""
    folder = f"part-{index // FILES_PER_FOLDER:03d}"
    if index % 3 == 2:
        return f"{folder}/doc-{index:06d}.txt", "\n\n".join([title, *blocks]) + "\n"
    return f"{folder}/doc-{index:06d}.md", "\n\n".join([f"# {title}", *blocks]) + "\n"


def _documents(seed: int) -> Iterator[tuple[str, list[str]]]:
    writer = ProseWriter(random.Random(seed))
    while True:
        _, title, blocks = writer.document()
        yield title, blocks


def build_corpus(folder: Path, n_chunks: int, chunker: Chunker, seed: int = SEED) -> CorpusInfo:
    """Write files holding ``n_chunks`` chunks (as ``chunker`` splits them) into ``folder``; reused when present."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        if meta.get("seed") == seed and meta.get("target") == n_chunks:
            return CorpusInfo(folder, int(meta["files"]), int(meta["chunks"]), int(meta["characters"]))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    total = files = characters = 0
    for index, (title, blocks) in enumerate(_documents(seed)):
        remaining = n_chunks - total
        if remaining <= 0:
            break
        while True:
            source, text = _render(index, title, blocks)
            count = len(chunker.split(Document(normalise_text(text), source, title), "-"))
            if count <= remaining or len(blocks) == 1:
                break
            blocks = blocks[:-1]
        path = folder / source
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        total += count
        files += 1
        characters += len(text)
    meta = {"seed": seed, "target": n_chunks, "files": files, "chunks": total, "characters": characters}
    manifest.write_text(json.dumps(meta))
    return CorpusInfo(folder, files, total, characters)


def questions(n: int, seed: int = SEED) -> list[str]:
    """``n`` questions in the corpus's vocabulary, as a user of it might type them."""
    rng = random.Random(seed + 1)
    asked: list[str] = []
    for _ in range(n):
        topic = TOPICS[rng.choice(sorted(TOPICS))]
        noun, place = rng.choice(topic.nouns), rng.choice(topic.places)
        base = rng.choice(VERBS)[0]
        asked.append(
            rng.choice(
                (
                    f"Why did {rng.choice(topic.orgs)} {base} the {noun} in {place}?",
                    f"What happened to the {rng.choice(topic.adjectives)} {noun}?",
                    f"Who had to {base} the {noun} and when?",
                    f"How many {_plural(noun)} were there in {place}?",
                    f"what did the {rng.choice(topic.roles)} say about the {noun}",
                )
            )
        )
    return asked
