"""Runs of words a reply may not say again: what stops a small model echoing the transcript.

llama.cpp's repetition penalties see only the reply's own tokens (the sampler
is told of each token it picks, never of the prompt's), so nothing stops a
270M model from copying the line just said to it, word for word. The worker
therefore bans, at each step, any token that would make the reply's last
:data:`NGRAM` tokens a run already said in the transcript or earlier in the
reply. Only runs with at least :data:`MIN_WORDS` word tokens count: quotes,
asterisks and spaces recur in every beat, and banning those runs would push
the model off its format. A run across a line break never counts: the
transcript's lines end ``you.`` and open ``Wren:``, and banning ``Wren``
after ``you.`` and a line break made the model tag its next line ``W:``,
which no stop catches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

NGRAM = 4
"""Tokens in a run that may not repeat: the fourth token of a copied run is banned."""
MIN_WORDS = 2
"""Word tokens (holding a letter or digit) a run needs before it is banned."""
BANNED = -1e9
"""The logit given to a banned token: llama.cpp never picks it."""


class RepeatBan:
    """The tokens that would repeat a run of :data:`NGRAM` tokens, kept as the reply grows.

    ``said`` is the transcript's tokens (what the reply may not copy); ``wordy``
    tells whether a token id holds a word, ``breaking`` whether it holds a line
    break. :meth:`banned` gives, for the tokens
    so far, those the next one may not be; :meth:`add` records a token of the
    reply, so the reply may not repeat itself either.
    """

    def __init__(
        self,
        said: Sequence[int],
        wordy: Callable[[int], bool],
        ngram: int = NGRAM,
        breaking: Callable[[int], bool] = lambda token: False,
    ) -> None:
        self.ngram = ngram
        self._wordy = wordy
        self._breaking = breaking
        self._known: dict[int, bool] = {}
        self._breaks: dict[int, bool] = {}
        self._next: dict[tuple[int, ...], set[int]] = {}
        self._reply: list[int] = list(said[-(ngram - 1) :]) if ngram > 1 else []
        for end in range(ngram, len(said) + 1):
            self._learn(tuple(said[end - ngram : end]))

    def _is_word(self, token: int) -> bool:
        known = self._known.get(token)
        if known is None:
            known = self._known[token] = self._wordy(token)
        return known

    def _breaks_line(self, token: int) -> bool:
        known = self._breaks.get(token)
        if known is None:
            known = self._breaks[token] = self._breaking(token)
        return known

    def _learn(self, run: tuple[int, ...]) -> None:
        if any(self._breaks_line(t) for t in run):
            return
        if sum(self._is_word(t) for t in run) >= MIN_WORDS:
            self._next.setdefault(run[:-1], set()).add(run[-1])

    def banned(self, before: Sequence[int]) -> set[int]:
        """The tokens that may not follow ``before`` (the text so far, as token ids)."""
        if self.ngram < 2 or len(before) < self.ngram - 1:
            return set()
        return self._next.get(tuple(before[-(self.ngram - 1) :]), set())

    def add(self, token: int) -> None:
        """The reply went on with ``token``: its run joins what may not be said again."""
        self._reply.append(token)
        if len(self._reply) >= self.ngram:
            self._learn(tuple(self._reply[-self.ngram :]))
            del self._reply[: -(self.ngram - 1)]
