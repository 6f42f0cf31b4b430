"""Intent, confidence, sentiment and risk flags for a batch of messages, from one embedding per message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.batching import MicroBatcher
from bot.classify.encoder import Embeddings, TransformersEncoder
from bot.classify.head import Head, trained
from bot.classify.neighbours import IntentModel, example_vectors, intent_model
from bot.classify.risk import RiskDetector, sentences
from bot.models import Classification
from bot.policy.schema import BrandPolicy, Mode
from bot.script import ENGLISH, Languages

UNKNOWN = "unknown"
MAX_RUN = 256  # texts per model run: bounds the wait of the first caller in a long queue
# Texts x examples above which the neighbours' vote goes to a thread: about 2 ms of matrix products. Below it
# the thread's hand-over would cost more than the vote (a few texts against a few hundred examples).
INLINE_VOTE = 100_000
# Characters above which a text's risk patterns run on a thread. The patterns hold the interpreter's lock, so on a
# thread the loop still waits for them, up to the switch interval (5 ms): a thread shortens the loop's wait only for
# a text whose patterns take longer than that. A usual message (110 characters) takes 0.3 ms; 1,000 characters
# holding the lexicon's words about 5 ms, 2,000 about 12 and 20,000 over 200 (bench/risk.py), which on the loop
# would stall every other conversation of the worker.
INLINE_RISK = 1_000


def vote_off_loop(texts: int, examples: int) -> bool:
    """Whether the intent model's vote over `examples` for `texts` is large enough to keep off the event loop
    (a Banking77-sized brand's batch of 256 takes ~40 ms there, which would stall every other request)."""
    return texts * examples > INLINE_VOTE


def risk_off_loop(text: str) -> bool:
    """Whether `text` is long enough for its risk patterns to run on a thread (`INLINE_RISK`). There the event
    loop still gets its turns between one pattern's search and the next."""
    return len(text) > INLINE_RISK


class Run:
    """One model run's vectors, and the heads' reading of all its texts, made once for the run's callers by the
    first that needs it. By then the micro-batcher has handed the model its next run, so the reading overlaps the
    model's work instead of delaying it, and one product of the run's vectors against the examples costs a
    fraction of one per caller (BENCHMARKS.md, "What the service adds to a lone message")."""

    def __init__(self, vectors: Embeddings, intents: IntentModel, sentiment: Head | None) -> None:
        self.vectors = vectors
        self._intents = intents
        self._sentiment = sentiment
        self._read: tuple[np.ndarray, np.ndarray | None] | None = None
        self._reading: asyncio.Task[tuple[np.ndarray, np.ndarray | None]] | None = None  # a vote on a thread

    async def reading(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every text's intent probabilities, and sentiment probabilities (None without a sentiment head). Made
        by the first caller there and then: a hand-over to a task would cost the loop a turn a caller. Only a vote
        large enough for a thread (`vote_off_loop`) is awaited, and shared."""
        if self._read is not None:
            return self._read
        if not vote_off_loop(len(self.vectors.general), self._intents.examples):
            self._read = self._with_sentiment(self._intents.probabilities(self.vectors))
            return self._read
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_in_thread())
        return await asyncio.shield(self._reading)  # a caller cancelled meanwhile leaves it to the others

    async def _read_in_thread(self) -> tuple[np.ndarray, np.ndarray | None]:
        self._read = self._with_sentiment(await asyncio.to_thread(self._intents.probabilities, self.vectors))
        return self._read

    def _with_sentiment(self, intents: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        sentiment = self._sentiment.probabilities(self.vectors.general) if self._sentiment is not None else None
        return intents, sentiment


def _share(run: Run, start: int, stop: int) -> tuple[Run, int, int]:
    """A caller's share of a run: the run itself (read once for all) and the caller's rows in it."""
    return run, start, stop


def _examples(policy: BrandPolicy) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(intent, text) and (sentiment, text) pairs: what the heads train on."""
    intents = [(name, text) for name, spec in policy.intents.intents.items() for text in spec.examples]
    feelings = [(str(name), text) for name, texts in policy.sentiment.sentiments.items() for text in texts]
    return intents, feelings


def _answered(policy: BrandPolicy) -> frozenset[str]:
    """The intents the bot answers without a person."""
    return frozenset(name for name, spec in policy.intents.intents.items() if spec.mode is Mode.AUTO)


class Classifier:
    """The intent model (head and nearest examples), the sentiment head and the risk lexicon over a shared
    encoder.

    A prediction less confident than `unknown_below` comes out as the intent `unknown` (with its confidence),
    so a message that matches no intent well is not forced onto the nearest one.
    """

    def __init__(
        self,
        encoder: TransformersEncoder,
        intents: IntentModel,
        risk: RiskDetector,
        unknown_below: float = 0.0,
        sentiment: Head | None = None,
        trained_on: object = None,
        answered: frozenset[str] = frozenset(),
        languages: Languages | None = None,
    ) -> None:
        self.encoder = encoder
        self.intents = intents
        self.risk = risk
        self.unknown_below = unknown_below
        self.sentiment = sentiment
        self.trained_on = trained_on  # the examples of the heads, to tell whether a new policy changed them
        self.answered = answered  # intents answered alone: their messages of several sentences are read again
        self.languages = languages  # None: every text is taken for English
        self._batcher = MicroBatcher(self._embed_run, _share, MAX_RUN, "classifier-runs")

    @classmethod
    def build(
        cls, encoder: TransformersEncoder, policy: BrandPolicy, cache_dir: Path, tuned_layers: int = 0
    ) -> Classifier:
        """Tune the encoder's top layers, embed the policy's examples and train the heads on them, or load what
        was tuned, embedded and trained from the very same ones (and the same encoder and settings) before."""
        intents, feelings = _examples(policy)
        encoder.tune_top(tuned_layers, intents, cache_dir)
        tuned = encoder.intent_fingerprint
        vectors = example_vectors(cache_dir, tuned, intents, encoder.embed)
        head = trained(cache_dir, "intent", tuned, intents, lambda _: vectors.intent)  # the examples' own order
        return cls(
            encoder,
            intent_model(head, vectors, [label for label, _ in intents]),
            RiskDetector(policy.risk, head.labels),
            policy.intents.unknown_threshold,
            trained(cache_dir, "sentiment", encoder.fingerprint, feelings, lambda texts: encoder.embed(texts).general),
            (intents, feelings),
            _answered(policy),
            Languages(encoder.tokenizer.get_vocab()),
        )

    def adopt(self, policy: BrandPolicy) -> bool:
        """Take a reloaded policy's risk lexicon and unknown threshold at once. The heads stay as trained:
        False when the policy's examples differ from theirs (retraining waits for `train` and a restart)."""
        self.risk = RiskDetector(policy.risk, self.intents.labels)
        self.unknown_below = policy.intents.unknown_threshold
        self.answered = _answered(policy)
        return _examples(policy) == self.trained_on

    async def classify_many(self, texts: Sequence[str]) -> tuple[list[Classification], np.ndarray]:
        """Classifications and the general vectors of the texts (reused for knowledge retrieval). Calls that
        arrive while the model is busy share its next run, so concurrent single messages cost about what one
        batch costs; only the risk patterns (a long text's on a thread) and the language run per text, and a text
        on its way to an automatic answer with several sentences has them read again (`_second_reading`)."""
        if not texts:
            return [], np.zeros((0, self.encoder.dimension), dtype=np.float32)
        run, start, stop = await self._batcher.submit(texts)
        intents, sentiment = await run.reading()
        probabilities = intents[start:stop]
        predictions = self.intents.best(probabilities)
        feelings: Sequence[tuple[str | None, float | None]] = [(None, None)] * len(texts)
        if self.sentiment is not None and sentiment is not None:
            feelings = self.sentiment.best(sentiment[start:stop])
        risk = self.risk  # the lexicon this call began with, should a reload replace it meanwhile
        flags = [
            await asyncio.to_thread(risk.detect, text, row) if risk_off_loop(text) else risk.detect(text, row)
            for text, row in zip(texts, probabilities, strict=True)
        ]
        languages = [self.languages.of(text) if self.languages else ENGLISH for text in texts]
        results = [
            Classification(
                intent=intent if confidence >= self.unknown_below else UNKNOWN,
                confidence=confidence,
                sentiment=feeling,
                sentiment_score=score,
                risk_flags=found,
                language=language,
            )
            for found, (intent, confidence), (feeling, score), language in zip(
                flags, predictions, feelings, languages, strict=True
            )
        ]
        return await self._second_reading(texts, results, risk), run.vectors.general[start:stop]

    async def _second_reading(
        self, texts: Sequence[str], results: list[Classification], risk: RiskDetector
    ) -> list[Classification]:
        """The sentences of each text read as an answered intent with no flag, read alone. One risky sentence
        among ordinary ones ("the fleece is long in the arms. also I've been hurting myself again ...") is
        diluted in the whole text's vector, and no pattern may know its words. The texts' sentences share one
        more model run; a text that raises nothing keeps its first reading."""
        if not risk.reads_sentences:
            return results
        parts = self.read_again(texts, results)
        if not parts:
            return results
        run, start, stop = await self._batcher.submit([sentence for found in parts.values() for sentence in found])
        probabilities = (await run.reading())[0][start:stop]
        read, at = list(results), 0
        for row, found in parts.items():
            flags = risk.in_sentences(found, probabilities[at : at + len(found)])
            at += len(found)
            if flags:
                read[row] = read[row].model_copy(update={"risk_flags": flags})
        return read

    def read_again(self, texts: Sequence[str], results: Sequence[Classification]) -> dict[int, list[str]]:
        """The sentences of each text (by its row) that a second reading takes: read as an answered intent,
        no flag, and two or more sentences worth reading alone."""
        return {
            row: found
            for row, (text, result) in enumerate(zip(texts, results, strict=True))
            if result.intent in self.answered and not result.risk_flags and (found := sentences(text))
        }

    async def _embed_run(self, texts: list[str]) -> Run:
        return Run(
            await self.encoder.in_thread(self.encoder.embed, texts, self.encoder.run_batch),
            self.intents,
            self.sentiment,
        )
