"""When a rendered note starts to sound: labels at the sound, as real annotations are.

The note annotations of real recordings (MAESTRO, MAPS: a Disklavier's record of its
hammers) sit where each note's sound starts.  A FluidSynth render sounds later than its
MIDI note-ons, in two parts (measured, README "Labels at the sound"):

* the synthesiser starts an event at the first of its fixed 64-sample blocks
  (:data:`BLOCK`) that begins at or after it: 0-4 ms at 16 kHz, set by the note-on's
  phase against the block grid;
* the sample's attack then takes some 4-8 ms to come within 30 dB of its peak, by
  SoundFont, preset, key and velocity (:func:`attack_table`, measured on isolated notes).

Alignment data rendered by :func:`pianossm.align.data.build_rendered` therefore labels each
note at :func:`sound_onsets` (note-on plus both parts), and a network trained on note-on
labels carries their mean delay (:func:`mean_render_latency`) in its checkpoint
(``label_latency``), which :func:`pianossm.align.api.align_notes` undoes.

We measure rather than read FluidSynth's source: its block size is a compile-time constant
and its attacks depend on each SoundFont's envelopes and samples; the tests check the model
(block wait plus attack) against the delays measured on notes at random phases.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np

from pianossm.align.notes import Notes

__all__ = ["BLOCK", "RESOLUTION", "attack_table", "block_wait", "exact_midi", "first_sound",
           "mean_render_latency", "measure_delays", "sound_onsets"]

#: FluidSynth's rendering block in samples (FLUID_BUFSIZE): events start on its grid.
BLOCK = 64
#: MIDI ticks per quarter note of the files handed to FluidSynth (:func:`exact_midi`): at
#: 120 bpm a tick is 0.05 ms, so the written note-ons are where the notes say (pretty_midi's
#: default of 220 rounds them to 2.3 ms ticks).
RESOLUTION = 9600
#: Keys and velocities of :func:`attack_table`'s grid.
TABLE_PITCHES = tuple(range(21, 109))
TABLE_VELOCITIES = (15, 40, 65, 90, 115, 127)
_GAP = 1.0  # s between the isolated notes of the table (each note 0.3 s long)


def first_sound(audio: np.ndarray, start: int, sample_rate: int,
                below_db: float = 30.0, span: float = 0.1) -> float:
    """Seconds from sample ``start`` to the first sample whose magnitude comes within
    ``below_db`` of the largest in the ``span`` seconds after ``start``.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` samples; silent (below the threshold) just before ``start``.
    start : int
        Where to look from (a note-on, in samples).
    sample_rate : int
        Hz.
    below_db : float
        How far below the peak the sound counts as started.
    span : float
        Seconds after ``start`` whose peak sets the threshold.

    Returns
    -------
    float
        Seconds (``span`` when nothing sounds).
    """
    seg = np.abs(np.asarray(audio[start:start + int(span * sample_rate)], np.float64))
    if not len(seg) or seg.max() <= 0:
        return span
    return int(np.argmax(seg >= seg.max() * 10 ** (-below_db / 20))) / sample_rate


def exact_midi(midi: pretty_midi.PrettyMIDI) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A copy at :data:`RESOLUTION` ticks per quarter and 120 bpm, the same events at the
    same seconds (to within 0.03 ms), for rendering.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI
        The performance (any resolution and tempo map).

    Returns
    -------
    pretty_midi.PrettyMIDI
        Instruments with their notes, pedal and other control changes and pitch bends.
    """
    import copy

    import pretty_midi

    out = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=120.0)
    out.instruments = [copy.deepcopy(inst) for inst in midi.instruments]
    return out


def _render(midi: pretty_midi.PrettyMIDI, soundfont: str, sample_rate: int,  # noqa: F821
            ) -> np.ndarray:
    """``(n,)`` FluidSynth render of ``midi`` written as it is (its resolution is part of
    what is rendered)."""
    from pianossm.fluid import render_fluidsynth

    with tempfile.TemporaryDirectory(prefix="pianossm-latency-") as tmp:
        path = os.path.join(tmp, "notes.mid")
        midi.write(path)
        return render_fluidsynth(path, sample_rate, soundfont)


@functools.lru_cache(maxsize=16)
def attack_table(soundfont: str, program: int = 0, sample_rate: int = 16000,
                 ) -> np.ndarray:
    """Each grid note's attack: seconds from the block that starts it to its first sound.

    Isolated notes (:data:`TABLE_PITCHES` x :data:`TABLE_VELOCITIES`, 1 s apart, 0.3 s
    long) are rendered with their note-ons on the block grid, and :func:`first_sound`
    (-30 dB) measured after each.  Cached per SoundFont, preset and rate (about 2 s each).

    Parameters
    ----------
    soundfont : str
        Short name or path (:func:`pianossm.fluid.find_soundfont`).
    program : int
        General MIDI preset (0: grand piano, 1: bright piano).
    sample_rate : int
        Render rate, Hz.

    Returns
    -------
    np.ndarray
        ``(len(TABLE_PITCHES), len(TABLE_VELOCITIES))`` float64 seconds.
    """
    import pretty_midi

    inst = pretty_midi.Instrument(int(program))
    grid = [(p, v) for p in TABLE_PITCHES for v in TABLE_VELOCITIES]
    starts = [BLOCK * int(np.ceil((0.5 + _GAP * j) * sample_rate / BLOCK))
              for j in range(len(grid))]
    for (p, v), s in zip(grid, starts):
        inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s / sample_rate,
                                           end=s / sample_rate + 0.3))
    midi = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=120.0)
    midi.instruments.append(inst)
    audio = _render(midi, soundfont, sample_rate)
    out = [first_sound(audio, s, sample_rate) for s in starts]
    return np.array(out, np.float64).reshape(len(TABLE_PITCHES), len(TABLE_VELOCITIES))


def block_wait(onset: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """``(N,)`` seconds from each note-on to the start of the block that plays it (the
    first of the :data:`BLOCK`-sample grid at or after it; 0 to ``BLOCK / sample_rate``).

    Parameters
    ----------
    onset : np.ndarray
        ``(N,)`` seconds.
    sample_rate : int
        Render rate, Hz.
    """
    # a note-on within a thousandth of a sample of a block's start is on it
    samples = np.round(np.asarray(onset, np.float64) * sample_rate, 3)
    return (np.ceil(samples / BLOCK) * BLOCK - samples) / sample_rate


def sound_onsets(notes: Notes, soundfont: str, program: int = 0,
                 sample_rate: int = 16000) -> np.ndarray:
    """Where the notes of a FluidSynth render of :func:`exact_midi` start to sound.

    Parameters
    ----------
    notes : Notes
        ``N`` notes as rendered (one preset).
    soundfont : str
        Short name or path.
    program : int
        General MIDI preset they were rendered with.
    sample_rate : int
        Render rate, Hz.

    Returns
    -------
    np.ndarray
        ``(N,)`` seconds: note-on + :func:`block_wait` + the attack, bilinear in key and
        velocity on :func:`attack_table` (held at the grid's edges).
    """
    from scipy.interpolate import RegularGridInterpolator

    table = attack_table(soundfont, int(program), int(sample_rate))
    interp = RegularGridInterpolator((TABLE_PITCHES, TABLE_VELOCITIES), table)
    pv = np.stack([np.clip(notes.pitch, TABLE_PITCHES[0], TABLE_PITCHES[-1]),
                   np.clip(notes.velocity, TABLE_VELOCITIES[0], TABLE_VELOCITIES[-1])],
                  axis=1).astype(np.float64)
    attack = interp(pv) if len(notes) else np.zeros(0)
    return notes.onset + block_wait(notes.onset, sample_rate) + attack


def measure_delays(soundfont: str, program: int = 0, resolution: int = RESOLUTION,
                   count: int = 200, seed: int = 0, sample_rate: int = 16000,
                   ) -> tuple[Notes, np.ndarray]:
    """Delays from note-on to sound measured on isolated notes at random phases: the
    slow reference of :func:`sound_onsets`, and how renders of files at other resolutions
    sound (pretty_midi's default of 220 ticks: FluidSynth rounds the current tick, so a
    note may start up to half a tick, 1.1 ms, before its written note-on).

    Parameters
    ----------
    soundfont : str
        Short name or path.
    program : int
        General MIDI preset.
    resolution : int
        Ticks per quarter note (at 120 bpm) of the rendered file.
    count : int
        Notes: keys 21-108 and velocities 20-127 drawn uniformly, 1 s apart, each a
        random 0-10 ms after its second.
    seed : int
        Their random numbers.
    sample_rate : int
        Render rate, Hz.

    Returns
    -------
    notes : Notes
        The ``count`` notes (their exact note-ons).
    delays : np.ndarray
        ``(count,)`` seconds from each note-on to its :func:`first_sound`.
    """
    import pretty_midi

    rng = np.random.default_rng(seed)
    onset = 0.5 + _GAP * np.arange(count) + rng.uniform(0.0, 0.01, count)
    notes = Notes(onset, onset + 0.3, rng.integers(21, 109, count),
                  rng.integers(20, 128, count))
    midi = pretty_midi.PrettyMIDI(resolution=int(resolution), initial_tempo=120.0)
    inst = pretty_midi.Instrument(int(program))
    inst.notes = [pretty_midi.Note(velocity=int(v), pitch=int(p), start=float(a), end=float(b))
                  for a, b, p, v in zip(notes.onset, notes.offset, notes.pitch, notes.velocity)]
    midi.instruments.append(inst)
    audio = _render(midi, soundfont, sample_rate)  # at `resolution`: part of what is measured
    # from 2 ms before each note-on, the earliest a file's rounding can start it
    first = np.floor((onset - 0.002) * sample_rate).astype(np.int64)
    delays = np.array([first_sound(audio, int(f), sample_rate) for f in first])
    return notes, delays + first / sample_rate - onset


def mean_render_latency(soundfonts: tuple[str, ...], programs: tuple[int, ...] = (0, 1),
                        resolution: int = 220, count: int = 200) -> float:
    """Mean measured delay (:func:`measure_delays`) from note-on to sound over SoundFonts
    and presets: what a network trained on the note-on labels of such renders learned to
    subtract (its checkpoint's ``label_latency``; the data of the shipped network were
    rendered from files at pretty_midi's default resolution, 220).

    Parameters
    ----------
    soundfonts : tuple of str
        Short names or paths (e.g. those of :data:`pianossm.align.data.TRAIN_PIANOS` in
        :data:`pianossm.align.data.PIANOS`).
    programs : tuple of int
        Presets (the rendered data use 0 and 1).
    resolution : int
        Ticks per quarter note of the rendered files.
    count : int
        Notes measured per SoundFont and preset.

    Returns
    -------
    float
        Seconds.
    """
    return float(np.mean(np.concatenate([
        measure_delays(sf, prog, resolution, count, seed=k)[1]
        for k, (sf, prog) in enumerate((sf, p) for sf in soundfonts for p in programs)])))
