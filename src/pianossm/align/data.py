"""Alignment data: rendered triplets on disk, and training segments with fresh perturbations.

A data folder holds, per item, ``NAME.mid`` (the aligned MIDI), ``NAME.flac`` (16 kHz
audio) and ``NAME.npz`` (the CQT and note arrays).  A rendered item's notes sit where each
starts to sound in its render (:data:`LABELS`; :mod:`pianossm.align.latency`), as the
annotations of real recordings do, not at the MIDI note-ons it was rendered from.
:func:`build_rendered` makes one from generated pieces rendered with FluidSynth (SoundFont,
reverb and noise varied per item); :func:`build_from_pairs` from a folder of real
``audio + MIDI`` pairs with the same stem (MAESTRO: ``.wav`` + ``.midi``; MAPS: ``.wav`` +
``.mid``).  The perturbed MIDI of a triplet is drawn anew every time a segment is read
(:class:`SegmentDataset`), so a model never sees the same timing errors twice.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import tempfile

import numpy as np
from tqdm import tqdm

from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.align.latency import exact_midi
from pianossm.align.notes import (
    FPS,
    LOWEST_KEY,
    N_KEYS,
    Notes,
    midi_to_notes,
    midi_to_piano_roll,
    velocity_roll,
)
from pianossm.align.perturb import PerturbConfig, perturb_notes
from pianossm.errors import PianoSSMError

__all__ = ["LABELS", "PIANOS", "SYNTH_LABELS", "TRAIN_PIANOS", "SegmentDataset",
           "augment_velocity", "bake_pedal", "build_from_pairs", "build_rendered",
           "check_labels", "list_items", "load_item", "load_plain_cqt"]


def _save_item(folder: str, name: str, audio: np.ndarray, midi: pretty_midi.PrettyMIDI,  # noqa: F821
               meta: dict) -> None:
    import soundfile as sf

    notes = midi_to_notes(midi)
    cqt = audio_to_cqt(audio, SAMPLE_RATE)
    midi.write(os.path.join(folder, name + ".mid"))
    sf.write(os.path.join(folder, name + ".flac"), np.clip(audio, -1, 1), SAMPLE_RATE)
    np.savez(os.path.join(folder, name + ".npz"), cqt=cqt.astype(np.float16),
             onset=notes.onset, offset=notes.offset, pitch=notes.pitch,
             velocity=notes.velocity, meta=json.dumps(meta))


#: Piano SoundFonts by short name (Debian packages fluid-soundfont-gm, timgm6mb-soundfont,
#: musescore-general-soundfont-*, csound-soundfont); ``csound`` is held out of training
#: (the unseen piano of the rendered test conditions; ``musescore`` was too until stage 8
#: of ``scripts/train_align.sh``).
PIANOS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "timgm6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "musescore": "musescore",
    "csound": "/usr/share/sounds/sf2/sf_GMbank.sf2",
}
TRAIN_PIANOS = ("fluidr3", "timgm6mb", "musescore")
#: Where rendered items' labels sit: where each note starts to sound (-30 dB of its peak:
#: :func:`pianossm.align.latency.sound_onsets`), as real recordings' annotations do.
LABELS = "sound"
#: Where the items of a Piano-SSM render (``build_rendered(synths=...)``) have their labels.
SYNTH_LABELS = "midi"


def build_rendered(folder: str, seeds: range, soundfonts: tuple[str, ...] = ("fluidr3",),
                   seconds: float = 30.0, reverb_p: float = 0.4, noise_p: float = 0.4,
                   quiet: bool = False, rooms: tuple[str, ...] = (),
                   midi_files: list[str] | None = None, synths: tuple[str, ...] = ()) -> None:
    """Render generated pieces (or given MIDI files) into a data folder (items already
    there are kept).

    With ``synths`` the piano is a Piano-SSM model instead of a SoundFont: a published
    MAESTRO checkpoint (``.pth``) is a neural model of the recordings of a real Disklavier,
    one output head per recording year (a hall and microphone set-up each), so its renders
    are a piano and rooms that no SoundFont renders.  The head is drawn per item, the
    output scaled to a peak of 0.3-0.8, and the notes are labelled at their MIDI note-ons
    (:data:`SYNTH_LABELS`): the model learnt MAESTRO's own note-on-to-sound timing, and its
    isolated notes at velocity 90 rise from the noise floor within 0-6 ms of the note-on
    (README, "A piano learnt from real recordings").

    Parameters
    ----------
    folder : str
        Destination (created).
    seeds : range
        One piece per seed; the seed also picks SoundFont, room, noise and gain.  With
        ``midi_files``, file ``j`` (in sorted order) takes seed ``seeds.start + j``.
    soundfonts : tuple of str
        Names of :data:`PIANOS`, SoundFont short names or paths to draw from.
    seconds : float
        Piece length.
    reverb_p, noise_p : float
        Without ``rooms``: probabilities of FluidSynth reverb and of added noise (SNR
        15..40 dB).
    quiet : bool
        No progress bar.
    rooms : tuple of str
        Recording conditions of :data:`pianossm.align.acoustics.ROOMS` to draw from: a
        generated room, microphone EQ, 20-50 dB noise, level and compression (replaces
        ``reverb_p``/``noise_p``).  Half the pieces also use GM program 1 (bright piano).
    midi_files : list of str, optional
        Performances to render instead of generated pieces (whole, ``seconds`` unused),
        e.g. the humanised corpus pieces of a ``pianossm dataset build`` folder; each item
        is named after its file's stem, which must be unique.
    synths : tuple of str
        Piano-SSM checkpoints (published ``.pth`` or pianossm ``.pt``; ``default``: the
        built-in model) to draw the piano from instead of ``soundfonts``.
    """
    from pianossm.align.acoustics import record
    from pianossm.fluid import render_fluidsynth

    if midi_files is not None:
        files = sorted(midi_files)
        stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
        if len(set(stems)) != len(stems):
            raise PianoSSMError("MIDI files to render must have distinct names (stems)")
        jobs = [(seeds.start + j, stem, f) for j, (stem, f) in enumerate(zip(stems, files))]
    else:
        jobs = [(seed, f"gen{seed:06d}", None) for seed in seeds]
    models = _open_synths(synths)
    os.makedirs(folder, exist_ok=True)
    for seed, name, source in tqdm(jobs, desc="render", disable=quiet):
        if os.path.exists(os.path.join(folder, name + ".npz")):
            continue
        rng = np.random.default_rng(10_000_000 + seed)
        if models:
            _render_synth(folder, name, seed, source, seconds, models, rooms, rng)
            continue
        sf_name = soundfonts[int(rng.integers(len(soundfonts)))]
        reverb, gain = bool(rng.random() < reverb_p), float(rng.uniform(0.3, 0.8))
        midi = _piece(seed, seconds, source)
        if rooms and rng.random() < 0.5:
            midi.instruments[0].program = 1
        midi = exact_midi(midi)  # the note-ons FluidSynth reads are where the notes say
        with tempfile.TemporaryDirectory(prefix="pianossm-align-") as tmp:
            path = os.path.join(tmp, "piece.mid")
            midi.write(path)
            audio = render_fluidsynth(path, SAMPLE_RATE, PIANOS.get(sf_name, sf_name),
                                      gain=gain, reverb=reverb and not rooms)
        delay = _label_at_sound(midi, PIANOS.get(sf_name, sf_name))
        meta = {"seed": seed, "soundfont": sf_name, "program": int(midi.instruments[0].program),
                "labels": LABELS, "sound_delay_ms": round(1000 * delay, 3)}
        if source is not None:
            meta["midi"] = os.path.basename(source)
        if rooms:
            room = rooms[int(rng.integers(len(rooms)))]
            audio, cond = record(audio, SAMPLE_RATE, room, rng)
            _save_item(folder, name, audio, midi, {**meta, **cond})
            continue
        snr = float(rng.uniform(15, 40)) if rng.random() < noise_p else None
        if snr is not None:
            noise = rng.normal(size=audio.size)
            if rng.random() < 0.5:  # pink-ish: integrate white noise a little
                noise = np.convolve(noise, np.ones(8) / 8, mode="same")
            power = float(np.mean(audio ** 2)) + 1e-12
            noise *= np.sqrt(power / np.mean(noise ** 2) / 10 ** (snr / 10))
            audio = (audio + noise).astype(np.float32)
        _save_item(folder, name, audio, midi, {**meta, "reverb": reverb, "snr_db": snr})


def _piece(seed: int, seconds: float, source: str | None) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """The generated piece of ``seed`` or the one-instrument performance in ``source``."""
    from pianossm.align.pieces import generate_piece
    from pianossm.features import load_midi

    if source is None:
        return generate_piece(seed, seconds)
    midi = load_midi(source)  # one clear error for a missing or corrupt file
    if len(midi.instruments) != 1:
        raise PianoSSMError(f"{source!r}: expected one instrument, found "
                            f"{len(midi.instruments)}")
    return midi


def bake_pedal(midi: pretty_midi.PrettyMIDI, gap: float = 0.005,  # noqa: F821
               ) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """The sustain pedal written into the notes, for a piano-roll synthesiser.

    A Piano-SSM model reads a piano roll in which a held pedal keeps each key at the
    running maximum of its velocities (``pretty_midi``'s ``get_piano_roll``, as in the
    paper), so a key struck again under the pedal leaves no onset in its input and comes
    out without an attack: 30 % of the notes of six pedalled generated pieces, 49 % of them
    aligned within 25 ms against 90 % of the others.  Here each note released under the
    pedal is held to the pedal's release instead, every note ends ``gap`` before the next
    onset of its key, and the pedal events are dropped: every note keeps its attack.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI
        A performance (not modified).
    gap : float
        Seconds of silence left in a key's roll before it is struck again.

    Returns
    -------
    pretty_midi.PrettyMIDI
        A copy: the same note onsets, pitches and velocities, no sustain-pedal events.
    """
    import copy

    out = copy.deepcopy(midi)
    for inst in out.instruments:
        events = sorted((c.time, c.value >= 64) for c in inst.control_changes
                        if c.number == 64)
        spans, start = [], None
        for t, down in events:
            if down and start is None:
                start = t
            elif not down and start is not None:
                spans.append((start, t))
                start = None
        if start is not None:
            spans.append((start, max([n.end for n in inst.notes] + [start])))
        for n in inst.notes:
            for a, b in spans:
                if a <= n.end < b:
                    n.end = b
        by_key: dict[int, list] = {}
        for n in sorted(inst.notes, key=lambda n: n.start):
            by_key.setdefault(n.pitch, []).append(n)
        for notes in by_key.values():
            for n, nxt in itertools.pairwise(notes):
                if n.end > nxt.start - gap:
                    n.end = max(n.start + 0.001, nxt.start - gap)
        inst.control_changes = [c for c in inst.control_changes if c.number != 64]
    return out


def _open_synths(synths: tuple[str, ...]) -> list[tuple[str, object]]:
    """``(name, model)`` for each Piano-SSM source of :func:`build_rendered`."""
    from pianossm.api import open_model

    out = []
    for src in synths:
        if src != "default" and not os.path.isfile(src):
            raise PianoSSMError(f"--synth {src!r}: no such Piano-SSM checkpoint")
        name = "default" if src == "default" else os.path.splitext(os.path.basename(src))[0]
        out.append((name, open_model(src)))
    return out


def _render_synth(folder: str, name: str, seed: int, source: str | None, seconds: float,
                  models: list[tuple[str, object]], rooms: tuple[str, ...],
                  rng: np.random.Generator) -> None:
    """One item of :func:`build_rendered` played by a Piano-SSM model (see there)."""
    from pianossm.align.acoustics import record
    from pianossm.api import synthesize

    synth, model = models[int(rng.integers(len(models)))]
    heads = model.config.heads
    head = heads[int(rng.integers(len(heads)))]
    gain = float(rng.uniform(0.3, 0.8))
    midi = exact_midi(_piece(seed, seconds, source))
    audio, _ = synthesize(bake_pedal(midi), model, SAMPLE_RATE, head, tail=1.0)
    if not np.isfinite(audio).all():
        raise PianoSSMError(f"Piano-SSM model {synth!r} produced non-finite audio for {name}")
    audio = (audio * (gain / max(float(np.abs(audio).max()), 1e-9))).astype(np.float32)
    meta = {"seed": seed, "synth": synth, "head": head, "labels": SYNTH_LABELS,
            "gain": round(gain, 4)}
    if source is not None:
        meta["midi"] = os.path.basename(source)
    if rooms:
        room = rooms[int(rng.integers(len(rooms)))]
        audio, cond = record(audio, SAMPLE_RATE, room, rng)
        meta.update(cond)
    _save_item(folder, name, audio, midi, meta)


def _label_at_sound(midi: pretty_midi.PrettyMIDI, soundfont: str) -> float:  # noqa: F821
    """Move each note of a rendered performance to where its render starts to sound
    (:func:`pianossm.align.latency.sound_onsets`; its duration kept), in place; returns
    the mean delay added, seconds."""
    from pianossm.align.latency import sound_onsets

    delays = []
    for inst in midi.instruments:
        if inst.is_drum or not inst.notes:
            continue
        notes = Notes(*(np.array([getattr(n, k) for n in inst.notes])
                        for k in ("start", "end", "pitch", "velocity")))
        delay = sound_onsets(notes, soundfont, inst.program, SAMPLE_RATE) - notes.onset
        for n, d in zip(inst.notes, delay):
            n.start, n.end = n.start + float(d), n.end + float(d)
        delays.append(delay)
    return float(np.mean(np.concatenate(delays))) if delays else 0.0


def check_labels(stems: list[str]) -> None:
    """Refuse items rendered before labels moved to the sound (their notes at the MIDI
    note-ons, some 6 ms before it: README, "Labels at the sound"), which would teach a
    network a mix of two conventions.

    Parameters
    ----------
    stems : list of str
        Items (see :func:`list_items`).
    """
    for stem in stems:
        with np.load(stem + ".npz") as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        if "soundfont" in meta and meta.get("labels") != LABELS:
            raise PianoSSMError(f"{stem}.npz was rendered by an older pianossm, its labels "
                                f"at the MIDI note-ons rather than the sound; render its "
                                f"folder again with align-data")


def build_from_pairs(src: str, folder: str, quiet: bool = False) -> int:
    """Import real ``audio + MIDI`` pairs (MAESTRO, MAPS) found recursively in ``src``.

    Parameters
    ----------
    src : str
        Folder searched for ``*.wav``/``*.flac`` with a ``.mid``/``.midi`` of the same stem.
    folder : str
        Destination data folder.
    quiet : bool
        No progress bar.

    Returns
    -------
    int
        Number of pairs imported.
    """
    from pianossm.audio import read_audio
    from pianossm.features import load_midi

    pairs = []
    for audio in sorted(glob.glob(os.path.join(src, "**", "*.*"), recursive=True)):
        stem, ext = os.path.splitext(audio)
        midi = next((stem + e for e in (".midi", ".mid") if os.path.isfile(stem + e)), None)
        if ext.lower() in (".wav", ".flac") and midi:
            pairs.append((audio, midi))
    if not pairs:
        raise PianoSSMError(f"no audio + MIDI pairs (same stem) found under {src!r}")
    os.makedirs(folder, exist_ok=True)
    for audio_path, midi_path in tqdm(pairs, desc="import", disable=quiet):
        name = os.path.basename(os.path.splitext(audio_path)[0])
        audio, _ = read_audio(audio_path, SAMPLE_RATE)
        _save_item(folder, name, audio, load_midi(midi_path), {"source": audio_path})
    return len(pairs)


def list_items(folder: str) -> list[str]:
    """Sorted item paths (without extension) of a data folder; error when empty."""
    items = sorted(p[:-4] for p in glob.glob(os.path.join(folder, "*.npz")))
    if not items:
        raise PianoSSMError(f"no alignment data (*.npz) in {folder!r}; run align-data first")
    return items


def load_item(stem: str) -> tuple[np.ndarray, Notes]:
    """``(T, 88)`` float32 CQT and the aligned notes of one item."""
    with np.load(stem + ".npz") as z:
        return z["cqt"].astype(np.float32), Notes(z["onset"], z["offset"], z["pitch"],
                                                  z["velocity"])


def load_plain_cqt(stem: str) -> np.ndarray:
    """``(T, 88)`` float32 CQT of the recording itself of an item whose ``cqt`` is that of
    its WPE prediction error (``cqt_plain``, written by ``scripts/align_wpe_data.py``)."""
    with np.load(stem + ".npz") as z:
        if "cqt_plain" not in z.files:
            raise PianoSSMError(f"{stem}.npz has no plain CQT (cqt_plain); run "
                                f"scripts/align_wpe_data.py on its folder again")
        return z["cqt_plain"].astype(np.float32)


class SegmentDataset:
    """Random training segments ``(x, y)`` with a new perturbation on every read.

    Parameters
    ----------
    stems : list of str
        Items (see :func:`list_items`), loaded into memory once.
    frames : int
        Segment length ``T`` in frames.
    perturb : PerturbConfig
        Timing-error model for the input roll.
    seed : int
        Seed of the segment positions and perturbations.
    velocity : bool
        Add the input's velocity channel (:func:`velocity_roll` of the perturbed notes
        with :func:`augment_velocity`); its random numbers come from a stream of their own
        (``vel_rng``), so the segments and perturbations are those drawn without it.
    plain_cqt : bool
        Add the recording's own CQT as the last input channel (:func:`load_plain_cqt`;
        the same level and EQ augmentation as the first).
    label_latency : float
        Seconds every note is moved earlier on loading, for a network whose labels sit
        that far before the sound (see :func:`pianossm.align.train.train`'s ``init``).
    """

    def __init__(self, stems: list[str], frames: int, perturb: PerturbConfig,
                 seed: int = 0, velocity: bool = False, plain_cqt: bool = False,
                 label_latency: float = 0.0) -> None:
        lat = float(label_latency)
        self.items = [(cqt, n.with_times(n.onset - lat, n.offset - lat))
                      for cqt, n in (load_item(s) for s in stems)]
        self.plain = [load_plain_cqt(s) for s in stems] if plain_cqt else None
        self.frames, self.perturb = frames, perturb
        self.rng = np.random.default_rng(seed)
        self.velocity = velocity
        self.vel_rng = np.random.default_rng([seed, 1])

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One segment.

        Returns
        -------
        x : np.ndarray
            ``(3, T, 88)`` [CQT, perturbed onsets, perturbed frames], float32 (with
            ``velocity``: ``(4, T, 88)``, their velocities next; with ``plain_cqt`` the
            plain CQT last).
        y : np.ndarray
            ``(2, T, 88)`` [aligned onsets, aligned frames], float32.
        pairs : np.ndarray
            ``(M, 4)`` int64 rows ``(key, input onset frame, aligned onset frame, sub-frame
            part)`` of the notes whose both onsets fall inside the segment; the last column
            is the aligned onset minus its (rounded) frame in thousandths of a frame
            (-500..500), for sub-frame targets.
        """
        item = int(self.rng.integers(len(self.items)))
        cqt, notes = self.items[item]
        start = int(self.rng.integers(0, max(1, cqt.shape[0] - self.frames)))
        seg = np.zeros((self.frames, cqt.shape[1]), np.float32)
        part = cqt[start:start + self.frames]
        seg[:len(part)] = part
        plain = None
        if self.plain is not None:
            plain = np.zeros_like(seg)
            part = self.plain[item][start:start + self.frames]
            plain[:len(part)] = part
            seg, plain = _augment_cqt(seg, self.rng, plain)
        else:
            seg = _augment_cqt(seg, self.rng)
        t0 = start / FPS
        bad = perturb_notes(notes, self.perturb.scaled(self.rng.uniform(0.3, 1.0)), self.rng)
        x_roll = midi_to_piano_roll(bad, self.frames, FPS, t0)
        y = midi_to_piano_roll(notes, self.frames, FPS, t0)
        c_in = np.round((bad.onset - t0) * FPS).astype(np.int64)
        exact = (notes.onset - t0) * FPS
        c_true = np.round(exact).astype(np.int64)
        milli = np.round(1000 * (exact - c_true)).astype(np.int64)
        key = notes.pitch - LOWEST_KEY
        ok = ((c_in >= 0) & (c_in < self.frames) & (c_true >= 0) & (c_true < self.frames)
              & (key >= 0) & (key < N_KEYS))
        pairs = np.stack([key[ok], c_in[ok], c_true[ok], milli[ok]], axis=1)
        parts = [seg[None], x_roll]
        if self.velocity:
            vel = augment_velocity(bad.velocity, self.vel_rng)
            parts.append(velocity_roll(Notes(bad.onset, bad.offset, bad.pitch, vel),
                                       self.frames, FPS, t0)[None])
        if plain is not None:
            parts.append(plain[None])
        return np.concatenate(parts), y, pairs


def augment_velocity(velocity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Velocities as another MIDI file of the same performance might give them.

    One segment in five gets one constant velocity (40-100: a score, or a file without
    dynamics); the rest a random curve ``127 (v / 127) ** g`` (``g`` log-uniform in
    0.7-1.4: pianos and SoundFonts map velocity to loudness differently) and per-note
    noise (standard deviation 6), clipped to 1-127.

    Parameters
    ----------
    velocity : np.ndarray
        ``(N,)`` MIDI velocities.
    rng : np.random.Generator
        Random numbers.

    Returns
    -------
    np.ndarray
        ``(N,)`` int64 velocities.
    """
    if rng.random() < 0.2:
        return np.full(len(velocity), int(rng.integers(40, 101)), np.int64)
    g = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    v = 127.0 * (np.clip(velocity, 1, 127) / 127.0) ** g + rng.normal(0.0, 6.0, len(velocity))
    return np.clip(np.round(v), 1, 127).astype(np.int64)


def _augment_cqt(seg: np.ndarray, rng: np.random.Generator,
                 other: np.ndarray | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Random level, spectral tilt and smooth EQ on a ``(T, 88)`` log CQT (timbre variety
    beyond the training SoundFont); with ``other`` (a second ``(T, 88)`` CQT of the same
    recording) the same change on both, returned as a pair."""
    k = np.linspace(-1, 1, seg.shape[1], dtype=np.float32)
    eq = rng.uniform(-0.08, 0.08) * k + np.interp(
        k, np.linspace(-1, 1, 6), rng.normal(0, 0.04, 6)).astype(np.float32)
    gain = rng.uniform(0.85, 1.15)
    shift = rng.uniform(-0.1, 0.05)
    out = [np.clip(x * gain + eq[None] + shift, 0.0, 1.0).astype(np.float32)
           for x in (seg, *(() if other is None else (other,)))]
    return out[0] if other is None else (out[0], out[1])
