"""The brand's knowledge base: markdown files split into passages at `## ` headings, embedded once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.classify.encoder import TransformersEncoder
from bot.errors import ConfigError


@dataclass(frozen=True)
class Passage:
    id: str  # "<file stem>#<heading slug>"
    title: str
    text: str


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def load_knowledge(directory: Path) -> list[Passage]:
    """Every `## Section` of every markdown file as one passage; a file without sections is one passage."""
    passages: list[Passage] = []
    files = sorted(directory.glob("*.md"))
    if not files:
        raise ConfigError(f"{directory}: no knowledge files (*.md)")
    for path in files:
        title, heading = path.stem, ""
        sections: list[tuple[str, list[str]]] = []
        body: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                title = line[2:].strip()
            elif line.startswith("## "):
                if heading:
                    sections.append((heading, body))
                heading, body = line[3:].strip(), []
            elif line.strip():
                body.append(line.strip())
        if heading:
            sections.append((heading, body))
        if not sections:
            sections = [("", body)]
        for heading, lines in sections:
            if not lines:
                raise ConfigError(f"{path}: section {heading or title!r} has no text")
            passage_id = f"{path.stem}#{slug(heading)}" if heading else path.stem
            name = f"{title}: {heading}" if heading else title
            passages.append(Passage(passage_id, name, " ".join(lines)))
    ids = [p.id for p in passages]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{directory}: passage ids appear twice: {duplicates}")
    return passages


class KnowledgeIndex:
    """Cosine search over passage vectors (a few hundred passages: a matrix product is all it takes)."""

    def __init__(self, passages: list[Passage], vectors: np.ndarray) -> None:
        self.passages = passages
        self.vectors = vectors
        self.by_id = {p.id: p for p in passages}

    @classmethod
    def build(cls, passages: list[Passage], encoder: TransformersEncoder) -> KnowledgeIndex:
        return cls(passages, encoder.embed([f"{p.title}. {p.text}" for p in passages]).general)

    def search(self, vector: np.ndarray, k: int = 3, min_score: float = 0.25) -> list[Passage]:
        """The k passages closest to a message vector, best first, leaving out weak matches."""
        scores = self.vectors @ vector
        best = np.argsort(-scores)[:k]
        return [self.passages[i] for i in best if scores[i] >= min_score]
