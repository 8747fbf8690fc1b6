"""Whether the documents cover a question: a rule that does not depend on what the corpus is about.

A question's evidence joins two signals that a wide corpus (a wiki about cooking, sport and travel as well as the
product) cannot inflate:

- **term support** (:mod:`index.term_support`): the share of what the question names, each word weighted by how
  rare it is in English at large, that its first passages hold. "How high is Mount Everest?" asked of a survey
  of fictional mountains names *Everest*, which no passage holds.
- **closeness in meaning**: the best passage's cosine similarity to the question, which carries a question whose
  words differ from the passage's (a paraphrase, a long question framed as an essay task).

evidence = support + ``DENSE_WEIGHT`` × similarity; the question is covered at ``FLOOR`` or above. Both constants
are fixed, not measured on the index: a corpus that touches every everyday subject keeps the same line. They
were chosen on four corpora of different kinds (a news article, a long essay, a PDF white paper, twelve short
documents on unrelated subjects), each asked its own questions and every other set's as off-topic ones, at the
middle of the band in which answerable questions refused stayed at most 5% and off-topic ones refused at least
95% on every corpus (docs/eval.md).

Near-topic questions ("How many people live in Mosul?" of an article about Mosul) are covered by this rule: the
answerer then checks that the sentence it would quote supplies what is asked (:mod:`bot.answer.supplies`).
"""

from __future__ import annotations

#: Weight of the best passage's cosine similarity beside the term support (0..1).
DENSE_WEIGHT = 2.5
#: The evidence a question needs to count as covered.
FLOOR = 1.25


def evidence(best_similarity: float, support: float) -> float:
    """How strongly the passages bear on a question: its term support and its best passage similarity."""
    return support + DENSE_WEIGHT * best_similarity
