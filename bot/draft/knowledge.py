"""The brand's knowledge base: markdown files split into passages at `## ` headings, embedded once."""

from __future__ import annotations

import hashlib
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
    """Cosine search over passage vectors (a few hundred passages: a matrix product is all it takes).

    `by_intent` names the passages an intent's answer is built from (prompts/answers/<intent>.yaml): they
    come first for a message of that intent, so a question phrased unlike any passage still gets its facts.
    """

    def __init__(self, passages: list[Passage], vectors: np.ndarray, by_intent: dict[str, tuple[str, ...]]) -> None:
        self.passages = passages
        self.vectors = vectors
        self.by_id = {p.id: p for p in passages}
        self.by_intent = by_intent

    @classmethod
    def build(
        cls,
        passages: list[Passage],
        encoder: TransformersEncoder,
        by_intent: dict[str, tuple[str, ...]],
        cache_dir: Path | None = None,
    ) -> KnowledgeIndex:
        """Embed the passages once; with `cache_dir`, keep the vectors keyed by the texts and the model."""
        texts = [f"{p.title}. {p.text}" for p in passages]
        key = hashlib.sha256("\n".join([encoder.fingerprint, *texts]).encode()).hexdigest()[:20]
        path = cache_dir / f"knowledge-{key}.npy" if cache_dir is not None else None
        if path is not None and path.exists():
            return cls(passages, np.load(path), by_intent)
        vectors = encoder.embed(texts).general
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".tmp.npy"), vectors)
            path.with_suffix(".tmp.npy").replace(path)  # whole or absent, even if two processes race
        return cls(passages, vectors, by_intent)

    def search(self, vector: np.ndarray, intent: str = "", k: int = 3, min_score: float = 0.25) -> list[Passage]:
        """The intent's own passages, then the k passages closest to the message vector (weak matches left
        out), best first, each once."""
        scores = self.vectors @ vector
        best = [self.passages[i] for i in np.argsort(-scores)[:k] if scores[i] >= min_score]
        chosen = [self.by_id[i] for i in self.by_intent.get(intent, ())]
        return chosen + [p for p in best if p not in chosen]
