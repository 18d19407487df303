"""A piano roll built incrementally from MIDI events, for streaming synthesis.

It follows the rules of :class:`pianossm.features.PianoRoll` (pretty_midi's
``get_piano_roll``) frame by frame:

* frame ``f`` covers samples ``[f hop, (f + 1) hop)``; an event at sample ``t`` takes
  effect at frame ``ceil(t / hop)``, the first frame that starts at or after it (the only
  causal choice; events on the frame grid, such as those of :func:`events_from_roll`,
  land exactly where the offline roll puts them);
* a note adds its velocity to its key from its note-on frame up to (excluding) its
  note-off frame; overlapping notes of one key add; a note-off closes every open note of
  its key except one switched on at the very same sample (pretty_midi's same-tick rule);
* while the sustain pedal (CC64 >= threshold) is down, each key holds the running maximum
  since the frame it went down;
* each *group* (a MIDI channel, or a track of :func:`events_from_roll`) has its own notes
  and pedal, as pretty_midi's instruments; MIDI channel 10 (index 9, drums) is ignored;
* the groups are summed, clipped to 127 and divided by 127.

Events are ``(sample_time, message)`` with ``message`` a mido message (``note_on``,
``note_off``, ``control_change``; others ignored) or a tuple ``("note_on", key, velocity,
group)``, ``("note_off", key, group)`` or ``("cc", number, value, group)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Any

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.features import LOWEST_KEY, N_KEYS, PianoRoll

__all__ = ["EventRoll", "events_from_roll", "parse_message"]

_DRUM_CHANNEL = 9
_KINDS = {"note_on": 0, "note_off": 1, "cc": 2}


def parse_message(msg: Any) -> tuple[int, int, int, Hashable] | None:
    """``(kind, number, value, group)`` of a mido message or tuple; ``None`` to ignore it.

    ``kind`` is 0 note-on, 1 note-off, 2 control change; a note-on with velocity 0 is a
    note-off.
    """
    if isinstance(msg, tuple):
        if not msg or msg[0] not in _KINDS:
            raise PianoSSMError(f"unknown event {msg!r}; allowed: ('note_on', key, velocity, "
                                "group), ('note_off', key, group), ('cc', number, value, group)")
        kind = _KINDS[msg[0]]
        try:
            if kind == 1:
                number, value, group = int(msg[1]), 0, msg[2] if len(msg) > 2 else 0
            else:
                number, value = int(msg[1]), int(msg[2])
                group = msg[3] if len(msg) > 3 else 0
        except (IndexError, TypeError, ValueError):
            raise PianoSSMError(f"malformed event {msg!r}") from None
    else:
        mtype = getattr(msg, "type", None)
        if mtype not in ("note_on", "note_off", "control_change"):
            return None
        group = msg.channel
        if group == _DRUM_CHANNEL:
            return None
        if mtype == "control_change":
            kind, number, value = 2, msg.control, msg.value
        else:
            kind, number, value = _KINDS[mtype], msg.note, msg.velocity
    if kind == 0 and value == 0:
        kind = 1
    return kind, number, value, group


class _Group:
    """Notes and pedal of one instrument."""

    def __init__(self) -> None:
        self.open: dict[int, list[tuple[int, int]]] = {}  # key -> [(t_on, velocity)]
        self.raw = np.zeros(N_KEYS)  # summed velocities of open notes
        self.down = False
        self.down_frame = -1
        self.held = np.zeros(N_KEYS)  # running maximum while the pedal is down

    def value(self, frame: int) -> np.ndarray:
        """The group's roll row at ``frame`` (call once per frame with changes, in order)."""
        if not self.down:
            return self.raw
        if self.down_frame == frame:
            self.held = self.raw.copy()
        else:
            np.maximum(self.held, self.raw, out=self.held)
        return self.held


class EventRoll:
    """Incremental roll: feed events, then read runs of constant frames.

    Parameters
    ----------
    hop : int
        Audio samples per MIDI frame.
    pedal_threshold : int
        CC64 value at and above which the pedal is down.
    """

    def __init__(self, hop: int, pedal_threshold: int = 64) -> None:
        self.hop, self.threshold = int(hop), int(pedal_threshold)
        self.reset()

    def reset(self) -> None:
        """Silence: no notes, pedals up, position 0."""
        self.pos = 0  # next sample to be read
        self.groups: dict[Hashable, _Group] = {}
        self.queue: list[tuple[int, int, int, int, int, int, Hashable]] = []
        self.value = np.zeros(N_KEYS, dtype=np.float32)
        self._seq = 0

    def add(self, time: int, msg: Any) -> None:
        """Queue one event at absolute sample ``time`` (not before the read position)."""
        if time < self.pos:
            raise PianoSSMError(f"event at sample {time} is in the past (now {self.pos})")
        parsed = parse_message(msg)
        if parsed is None:
            return
        kind, number, value, group = parsed
        frame = -(-int(time) // self.hop)
        heapq.heappush(self.queue, (frame, int(time), self._seq, kind, number, value, group))
        self._seq += 1

    def advance(self, n: int) -> tuple[list[np.ndarray], list[int]]:
        """Roll rows for the next ``n`` samples as runs of constant value.

        Returns
        -------
        values : list of np.ndarray
            ``(88,)`` float32 rows, one per run (the first continues the current value).
        lens : list of int
            Samples per run, summing to ``n``.
        """
        end = self.pos + n
        values, lens = [self.value], [0]
        start = self.pos
        while self.queue and self.queue[0][0] * self.hop < end:
            frame = self.queue[0][0]
            boundary = frame * self.hop
            lens[-1] += boundary - start
            start = boundary
            while self.queue and self.queue[0][0] == frame:
                _, t, _, kind, number, value, group = heapq.heappop(self.queue)
                self._apply(group, kind, number, value, t, frame)
            self.value = self._row(frame)
            if lens[-1] == 0:
                values[-1] = self.value
            else:
                values.append(self.value)
                lens.append(0)
        lens[-1] += end - start
        self.pos = end
        return values, lens

    def _apply(self, group: Hashable, kind: int, number: int, value: int, t: int,
               frame: int) -> None:
        g = self.groups.get(group)
        if g is None:
            g = self.groups[group] = _Group()
        if kind == 2:
            if number != 64:
                return
            pressed = value >= self.threshold
            if pressed and not g.down:
                g.down, g.down_frame = True, frame
            elif g.down and not pressed:
                g.down = False
            return
        key = number - LOWEST_KEY
        if not 0 <= key < N_KEYS:
            return
        if kind == 0:
            g.open.setdefault(key, []).append((t, value))
            g.raw[key] += value
            return
        notes = g.open.get(key)
        if not notes:
            return
        keep = [(t_on, v) for t_on, v in notes if t_on == t]
        g.raw[key] = float(sum(v for _, v in keep))
        g.open[key] = keep

    def _row(self, frame: int) -> np.ndarray:
        total = np.zeros(N_KEYS)
        for g in self.groups.values():
            total += g.value(frame)
        return (np.minimum(total, 127.0) / 127.0).astype(np.float32)


def events_from_roll(roll: PianoRoll, hop: int) -> list[tuple[int, tuple]]:
    """The events that rebuild ``roll`` exactly, on its frame grid, sorted by time.

    Notes are taken from the roll's parsed tracks (after pretty_midi's pairing and the
    clipping at each track's end), pedals from its pedal-down intervals (a pedal never
    released has no effect offline, so it gives no event), one group per track.

    Parameters
    ----------
    roll : PianoRoll
        The offline roll of a MIDI file.
    hop : int
        Audio samples per frame.

    Returns
    -------
    list of (int, tuple)
        ``(sample_time, message)`` pairs for :meth:`pianossm.engine.synth.Synth.process`.
    """
    out: list[tuple[int, int, tuple]] = []
    for gi, tr in enumerate(roll.tracks):
        for p, s, e, v in zip(tr.pitch, tr.start, np.minimum(tr.end, tr.n_frames),
                              tr.velocity):
            if e > s:
                out.append((int(s) * hop, 3, ("note_on", int(p) + LOWEST_KEY, int(v), gi)))
                out.append((int(e) * hop, 0, ("note_off", int(p) + LOWEST_KEY, gi)))
        for down, up in tr.pedal:
            up = min(int(up), tr.n_frames)
            if up > down:
                out.append((int(down) * hop, 2, ("cc", 64, 127, gi)))
                out.append((up * hop, 1, ("cc", 64, 0, gi)))
    out.sort(key=lambda e: (e[0], e[1]))
    return [(t, msg) for t, _, msg in out]
