"""Streaming synthesis: :class:`Synth` turns MIDI events into audio block by block.

``process(midi_events, n_samples)`` takes the events of the next ``n_samples`` of input
time (``(offset_in_block, message)`` pairs, see :mod:`pianossm.engine.events`) and returns
``n_samples`` of audio.  The output lags the input by exactly one block: the first call's
``n_samples`` (the *latency*, fixed from then on) of zeros are played first, so with a
constant block size the events given in call ``n`` are heard in the output of call
``n + 1``, at the same offsets.  Internally each call renders its own input window at once
(events take effect at the next MIDI frame boundary, which never lies before them) into a
small FIFO, so memory is bounded by the block size.  The output stream equals offline
rendering of the same roll, delayed by the latency.  A model with an input delay
(:attr:`pianossm.config.PianoSSMConfig.input_delay_ms`) takes every event that many MIDI
frames later, as offline rendering does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pianossm.engine import kernels
from pianossm.engine.core import SAMPLE_PATH_MAX, Engine
from pianossm.engine.events import EventRoll
from pianossm.engine.weights import EngineWeights, pack_model
from pianossm.errors import PianoSSMError

__all__ = ["MAX_BLOCK", "Synth"]

#: Largest block ``process`` accepts.
MAX_BLOCK = 4096


class Synth:
    """Real-time Piano-SSM synthesiser with carried state.

    Parameters
    ----------
    model : PianoSSM, PackedModel or EngineWeights
        A model (packed here at ``sample_rate``; a
        :class:`~pianossm.packed.PackedModel` from its cache, without torch) or already
        packed weights.
    sample_rate : int, optional
        Synthesis rate; default the model's training rate (ignored for packed weights).
    head : int or str
        Output head.
    dtype : numpy dtype
        Engine precision, ``np.float32`` or ``np.float64``.
    pedal_threshold : int, optional
        CC64 threshold; default the model's.

    The events are turned into the model's input layout (``weights.features``, see
    :class:`~pianossm.engine.events.EventRoll`).
    """

    def __init__(self, model: Any, sample_rate: int | None = None, head: int | str = 0,
                 dtype: type = np.float32, pedal_threshold: int | None = None) -> None:
        from pianossm.packed import PackedModel

        if isinstance(model, EngineWeights):
            weights = model
        else:
            rate = sample_rate or model.config.train_sample_rate
            pack = model.pack if isinstance(model, PackedModel) else (
                lambda *a: pack_model(model, *a))
            weights = pack(rate, model.head_index(head), dtype)
        self.weights = weights
        self.sample_rate, self.hop = weights.sample_rate, weights.hop
        self.engine = Engine(weights)
        threshold = weights.pedal_threshold if pedal_threshold is None else pedal_threshold
        self.roll = EventRoll(self.hop, threshold, weights.features, weights.sample_rate)
        # The model's input delay: every event takes effect that many frames later.
        self._delay = weights.delay_frames * self.hop
        self.latency: int | None = None
        self._fifo = np.zeros(2 * MAX_BLOCK, dtype=np.float32)
        self._fill = 0
        self._rendered = np.empty(MAX_BLOCK, dtype=weights.dtype)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        self._lens = np.zeros(1, dtype=np.int64)

    def reset(self) -> None:
        """Back to silence and a zero state; the next call sets the latency again."""
        self.engine.reset()
        self.roll.reset()
        self.latency, self._fill, self._cache = None, 0, None

    def _project(self, row: np.ndarray) -> np.ndarray:
        """Layer-0 input of one roll row, cached while the row does not change."""
        if self._cache is None or self._cache[0] is not row:
            self._cache = (row, self.engine.project_frames(row[None]))
        return self._cache[1][0]

    def _fast(self, n: int) -> np.ndarray:
        """A short block with no event in reach: one compiled call, no bookkeeping."""
        e, rendered = self.engine, self._rendered[:n]
        self._lens[0] = n
        kernels.run_samples(self._cache[1], self._lens, 0, n, e.flat, e.a64, e.meta, e.head,
                            e.state, e._scratch, rendered)
        self.roll.pos += n
        out = self._fifo[:n].copy()
        self._fifo[:n] = rendered
        return out

    def process(self, midi_events: Iterable[tuple[int, Any]], n_samples: int) -> np.ndarray:
        """Feed one block of events, get one block of audio (one block late).

        Parameters
        ----------
        midi_events : iterable of (int, message)
            ``(sample_offset_in_block, message)``, offsets in ``[0, n_samples)``; messages
            are mido ``note_on``/``note_off``/``control_change`` or the tuples of
            :mod:`pianossm.engine.events`.
        n_samples : int
            Block size, 1 to 4096 (the first call fixes the latency to this size).

        Returns
        -------
        np.ndarray
            ``(n_samples,)`` float32 audio.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or not (
                1 <= n_samples <= MAX_BLOCK):
            raise PianoSSMError(f"block size must be 1..{MAX_BLOCK} samples, got {n_samples!r}")
        n = int(n_samples)
        if self.latency is None:
            self.latency, self._fill = n, n
            self._fifo[:n] = 0.0
        if not midi_events and n == self._fill and n < SAMPLE_PATH_MAX and self._cache is not None \
                and self._cache[0] is self.roll.value and (
                    not self.roll.queue or self.roll.queue[0][0] * self.hop >= self.roll.pos + n):
            return self._fast(n)
        base = self.roll.pos
        for offset, msg in midi_events:
            if not 0 <= offset < n:
                raise PianoSSMError(f"event offset {offset} outside the block 0..{n - 1}")
            self.roll.add(base + int(offset) + self._delay, msg)
        rows, lens = self.roll.advance(n)
        v = np.stack([self._project(r) for r in rows]) if len(rows) > 1 else \
            self._project(rows[0])[None]
        rendered = self._rendered[:n]
        self.engine.render(v, np.asarray(lens, dtype=np.int64), rendered)
        if self._fill + n > self._fifo.shape[0]:
            raise PianoSSMError(f"block of {n} samples after a latency of {self.latency}: "
                                "the output buffer would overflow; keep block sizes steady")
        self._fifo[self._fill:self._fill + n] = rendered
        self._fill += n
        out = self._fifo[:n].copy()
        self._fifo[:self._fill - n] = self._fifo[n:self._fill]
        self._fill -= n
        return out
