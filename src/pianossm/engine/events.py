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

In the ``roll+onset+pedal`` layout (see :mod:`pianossm.features`) each row also has:

* onsets: a note-on taking effect at frame ``f`` gives its key velocity/127 in frames
  ``f .. f + onset_frames(fs) - 1`` (the offline box of a note on the frame grid),
  maximum over overlapping onsets of the key in every group, whatever the pedal does;
* the pedal level: each group's latest CC64 value/127 (0 before any), maximum over the
  groups.

So for events on the frame grid every channel equals the offline frames.

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
from pianossm.features import LOWEST_KEY, N_KEYS, PianoRoll, feature_channels, onset_frames

__all__ = ["EventRoll", "events_from_roll", "parse_message"]

_DRUM_CHANNEL = 9
_KINDS = {"note_on": 0, "note_off": 1, "cc": 2}
_ONSET_END = 3  # internal queue entry: an onset box ends at this frame


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
        self.cc64 = 0  # latest CC64 value

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
    features : str
        Input layout, ``roll`` or ``roll+onset+pedal`` (see :mod:`pianossm.features`).
    sample_rate : int, optional
        Audio rate, Hz; needed by layouts with onsets (their box is
        :func:`~pianossm.features.onset_frames` of ``sample_rate / hop`` frames long).
    """

    def __init__(self, hop: int, pedal_threshold: int = 64, features: str = "roll",
                 sample_rate: int | None = None) -> None:
        self.hop, self.threshold = int(hop), int(pedal_threshold)
        self.channels = feature_channels(features)
        self.features = features
        self.onset_len = 0
        if self.channels > N_KEYS:
            if sample_rate is None:
                raise PianoSSMError(f"an event roll of layout {features!r} needs the sample "
                                    "rate (its onset boxes are 10 ms long)")
            self.onset_len = onset_frames(sample_rate / self.hop)
        self.reset()

    def reset(self) -> None:
        """Silence: no notes, pedals up, position 0."""
        self.pos = 0  # next sample to be read
        self.groups: dict[Hashable, _Group] = {}
        self.queue: list[tuple[int, int, int, int, int, int, Hashable]] = []
        self.value = np.zeros(self.channels, dtype=np.float32)
        self.onsets: dict[int, list[tuple[int, int]]] = {}  # key -> [(end_frame, velocity)]
        self._seq = 0

    def add(self, time: int, msg: Any) -> None:
        """Queue one event at absolute sample ``time`` (not before the read position).

        Parameters
        ----------
        time : int
            Sample time; it takes effect at frame ``ceil(time / hop)``.
        msg : mido message or tuple
            See the module docstring.
        """
        if time < self.pos:
            raise PianoSSMError(f"event at sample {time} is in the past (now {self.pos})")
        parsed = parse_message(msg)
        if parsed is None:
            return
        kind, number, value, group = parsed
        frame = -(-int(time) // self.hop)
        self._push(frame, int(time), kind, number, value, group)

    def _push(self, frame: int, time: int, kind: int, number: int, value: int,
              group: Hashable) -> None:
        heapq.heappush(self.queue, (frame, time, self._seq, kind, number, value, group))
        self._seq += 1

    def advance(self, n: int) -> tuple[list[np.ndarray], list[int]]:
        """Rows for the next ``n`` samples as runs of constant value.

        Returns
        -------
        values : list of np.ndarray
            ``(channels,)`` float32 rows, one per run (the first continues the current
            value).
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
        if kind == _ONSET_END:
            return  # the box is dropped by _row; the entry only marks the change of row
        g = self.groups.get(group)
        if g is None:
            g = self.groups[group] = _Group()
        if kind == 2:
            if number != 64:
                return
            g.cc64 = value
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
            if self.onset_len > 0:
                self.onsets.setdefault(key, []).append((frame + self.onset_len, value))
                self._push(frame + self.onset_len, (frame + self.onset_len) * self.hop,
                           _ONSET_END, key, 0, None)
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
        row = np.zeros(self.channels, dtype=np.float32)
        row[:N_KEYS] = np.minimum(total, 127.0) / 127.0
        if self.channels > N_KEYS:
            for key in list(self.onsets):
                boxes = [b for b in self.onsets[key] if b[0] > frame]
                if boxes:
                    self.onsets[key] = boxes
                    row[N_KEYS + key] = min(max(v for _, v in boxes), 127) / 127.0
                else:
                    del self.onsets[key]
            pedal = max((g.cc64 for g in self.groups.values()), default=0)
            row[2 * N_KEYS] = min(pedal, 127) / 127.0
        return row


def events_from_roll(roll: PianoRoll, hop: int) -> list[tuple[int, tuple]]:
    """The events that rebuild ``roll`` exactly, on its frame grid, sorted by time.

    Notes are taken from the roll's parsed tracks (after pretty_midi's pairing and the
    clipping at each track's end), one group per track, with every CC64 event of the
    track at its frame.  Two things offline and streaming cannot share are moved:

    * a pedal pressed and never released has no effect on the offline roll (it cannot be
      known causally), so the CC64 events from that press on go to a group of their own
      without notes: they set the pedal channel but hold no note;
    * a note shorter than one frame (no roll frame, but an onset box) is switched on one
      sample before its frame and off at it; one in frame 0 (or with ``hop`` = 1) cannot
      be, and is left out.

    Parameters
    ----------
    roll : PianoRoll
        The offline roll of a MIDI file (any layout).
    hop : int
        Audio samples per frame.

    Returns
    -------
    list of (int, tuple)
        ``(sample_time, message)`` pairs for :meth:`pianossm.engine.synth.Synth.process`.
    """
    out: list[tuple[int, int, int, tuple]] = []
    seq = 0

    def put(t: int, order: int, msg: tuple) -> None:
        nonlocal seq
        out.append((t, order, seq, msg))
        seq += 1

    for gi, tr in enumerate(roll.tracks):
        for p, s, e, v in zip(tr.pitch, tr.start, np.minimum(tr.end, tr.n_frames),
                              tr.velocity):
            key = int(p) + LOWEST_KEY
            if e > s:
                put(int(s) * hop, 3, ("note_on", key, int(v), gi))
                put(int(e) * hop, 0, ("note_off", key, gi))
            elif s >= 1 and hop >= 2:  # its onset only
                put(int(s) * hop - 1, 3, ("note_on", key, int(v), gi))
                put(int(s) * hop, 0, ("note_off", key, gi))
        split, down = len(tr.cc_value), False  # split: the press never released, if any
        for i, value in enumerate(tr.cc_value):
            pressed = bool(value >= roll.pedal_threshold)
            if pressed and not down:
                split = i
            down = pressed
        if not down:
            split = len(tr.cc_value)
        for i, (frame, value) in enumerate(zip(tr.cc_frame, tr.cc_value)):
            group = gi if i < split else ("held pedal", gi)
            put(int(frame) * hop, 1, ("cc", 64, int(value), group))
    out.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(t, msg) for t, _, _, msg in out]
