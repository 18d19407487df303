"""The built-in dataset: generated MIDI rendered by FluidSynth with a sampled piano.

``build_builtin`` writes::

    OUT/midi/NAME.mid      generated performances (see :mod:`pianossm.data.generate`)
    OUT/audio/NAME.flac    FluidSynth renderings at the training rate, 16-bit
    OUT/manifest.json      seed, SoundFont, rate and the items with their splits
    OUT/cache/             the memory-mapped training cache (:mod:`pianossm.data.cache`)

Splits: ``train`` holds isolated notes over all keys and velocities, random chords,
usual chords and pieces; ``validation`` and ``test`` hold pieces only (drawn from their
own seeds, so they never repeat training material).  Everything is deterministic given
the seed and the SoundFont.  Sizes ``full`` and ``tiny`` are listed in :data:`SIZES`;
``large`` (about 9 hours, built on a process pool) in :mod:`pianossm.data.large`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict

import numpy as np

from pianossm.data.cache import AudioCache, Item, build_cache
from pianossm.data.pool import default_jobs, ordered_map
from pianossm.errors import PianoSSMError

__all__ = ["SIZES", "build_builtin", "build_from_midi", "builtin_items", "render_dataset"]

#: Counts per size: velocities of the isolated notes, keys step, chords, pieces.
SIZES: dict[str, dict] = {
    "full": {"velocities": (30, 60, 90, 120), "key_step": 1, "isol_files": 4,
             "chords": 120, "chord_files": 3, "train_pieces": 10, "valid_pieces": 2,
             "test_pieces": 4, "bars": 12},
    "tiny": {"velocities": (50, 100), "key_step": 22, "isol_files": 1,
             "chords": 4, "chord_files": 1, "train_pieces": 1, "valid_pieces": 1,
             "test_pieces": 1, "bars": 2},
}


def _programs(size: str, seed: int) -> list[tuple[str, str, pretty_midi.PrettyMIDI]]:  # noqa: F821
    """``(name, split, midi)`` of every file, each drawn from its own child seed."""
    from pianossm.data import generate as g

    spec = SIZES[size]
    root = np.random.SeedSequence(seed)
    seeds = iter(root.spawn(64))
    out = []
    isol = g.isolated_notes(np.random.default_rng(next(seeds)), spec["velocities"],
                            range(g.LOW, g.HIGH + 1, spec["key_step"]))
    out += [(f"isol_{i:02d}", "train", m) for i, m in enumerate(_split_midi(isol, spec["isol_files"]))]
    for kind, make in (("rand", g.random_chords), ("ucho", g.usual_chords)):
        rng = np.random.default_rng(next(seeds))
        for i in range(spec["chord_files"]):
            out.append((f"{kind}_{i:02d}", "train", make(rng, spec["chords"] // spec["chord_files"])))
    for split in ("train", "validation", "test"):
        rng = np.random.default_rng(next(seeds))
        n = spec[{"train": "train_pieces", "validation": "valid_pieces", "test": "test_pieces"}[split]]
        for i in range(n):
            out.append((f"piece_{split}_{i:02d}", split, g.piece(rng, spec["bars"])))
    return out


def _split_midi(pm: pretty_midi.PrettyMIDI, parts: int) -> list:  # noqa: F821
    """Cut a one-instrument file into ``parts`` files of about equal note counts, re-timed to 0."""
    import pretty_midi

    inst = pm.instruments[0]
    notes = sorted(inst.notes, key=lambda n: n.start)
    chunks = np.array_split(np.arange(len(notes)), parts)
    out = []
    for idx in chunks:
        if not len(idx):
            continue
        t0 = max(0.0, notes[idx[0]].start - 0.2)
        t1 = notes[idx[-1]].end + 0.5
        new = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        ni = pretty_midi.Instrument(program=0, name="piano")
        ni.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start - t0, n.end - t0)
                    for n in (notes[i] for i in idx)]
        ni.control_changes = [pretty_midi.ControlChange(c.number, c.value, c.time - t0)
                              for c in inst.control_changes if t0 <= c.time < t1]
        new.instruments.append(ni)
        out.append(new)
    return out


def builtin_items(root: str | os.PathLike[str]) -> list[Item]:
    """The items of a built dataset folder, from its manifest."""
    path = os.path.join(os.fspath(root), "manifest.json")
    if not os.path.isfile(path):
        raise PianoSSMError(f"not a pianossm dataset (no manifest.json): {os.fspath(root)!r}")
    with open(path) as f:
        manifest = json.load(f)
    return [Item(**{**it, "midi": os.path.join(os.fspath(root), it["midi"]),
                    "audio": os.path.join(os.fspath(root), it["audio"])})
            for it in manifest["items"]]


def build_builtin(out_dir: str | os.PathLike[str], soundfont: str = "fluidr3",
                  sample_rate: int = 16000, seed: int = 0, size: str = "full",
                  progress: bool = True, force: bool = False, jobs: int | None = None,
                  corpus: bool | None = None) -> AudioCache:
    """Generate, render and cache the built-in dataset.

    Parameters
    ----------
    out_dir : str or PathLike
        Dataset folder to create.
    soundfont : str
        SoundFont short name (``fluidr3``, ``musescore``) or path.
    sample_rate : int
        Rendering and training rate in Hz.
    seed : int
        Seed of every generated file.
    size : str
        ``large`` (about 9 hours, see :mod:`pianossm.data.large`), ``full`` (about 25
        minutes of audio) or ``tiny`` (about a minute, for tests).
    progress : bool
        Show tqdm bars.
    force : bool
        Replace an existing folder.
    jobs : int, optional
        Worker processes for parsing, rendering and caching (default: 1 for ``full`` and
        ``tiny``, every available core for ``large``); the result does not depend on it.
    corpus : bool, optional
        ``large`` only: use music21's corpus (default: when it is installed).

    Returns
    -------
    AudioCache
        The cache inside the folder.
    """
    if size == "large":
        from pianossm.data.large import build_large_programs

        from pianossm.fluid import find_soundfont

        jobs = default_jobs() if jobs is None else jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise PianoSSMError(f"jobs must be a whole number >= 1, got {jobs!r}")
        if os.path.exists(os.fspath(out_dir)) and not force:  # before minutes of parsing
            raise PianoSSMError(f"dataset folder exists: {os.fspath(out_dir)!r} "
                                f"(use --force to rebuild)")
        find_soundfont(soundfont)
        programs, meta = build_large_programs(seed, corpus, jobs, progress)
        return render_dataset(programs, out_dir, soundfont, sample_rate,
                              {"seed": seed, "size": size, **meta}, progress, force, jobs)
    if size not in SIZES:
        raise PianoSSMError(f"unknown dataset size {size!r}; allowed: "
                            f"{sorted([*SIZES, 'large'])}")
    return render_dataset(_programs(size, seed), out_dir, soundfont, sample_rate,
                          {"seed": seed, "size": size}, progress, force,
                          1 if jobs is None else jobs)


def build_from_midi(midi_paths: list[str], out_dir: str | os.PathLike[str],
                    soundfont: str = "fluidr3", sample_rate: int = 16000, split: str = "test",
                    progress: bool = True, force: bool = False) -> AudioCache:
    """A dataset of given MIDI files rendered with FluidSynth (e.g. to score a phrase).

    Parameters
    ----------
    midi_paths : list of str
        ``.mid`` files; names are their stems.
    out_dir, soundfont, sample_rate, progress, force
        As :func:`build_builtin`.
    split : str
        Split of every file.

    Returns
    -------
    AudioCache
    """
    from pianossm.features import load_midi

    programs = [(os.path.splitext(os.path.basename(p))[0], split, load_midi(p))
                for p in midi_paths]
    return render_dataset(programs, out_dir, soundfont, sample_rate, {}, progress, force)


def _render_one(task: tuple) -> Item:
    """Write one program's MIDI (generating it first if it is a recipe), render it."""
    import soundfile as sf

    from pianossm.fluid import render_fluidsynth

    name, split, midi, tmp, sf_path, sample_rate = task
    if not hasattr(midi, "write"):
        from pianossm.data.large import make_midi

        midi = make_midi(midi)
    midi_rel, audio_rel = f"midi/{name}.mid", f"audio/{name}.flac"
    midi.write(os.path.join(tmp, midi_rel))
    audio = render_fluidsynth(os.path.join(tmp, midi_rel), sample_rate, sf_path)
    sf.write(os.path.join(tmp, audio_rel), np.clip(audio, -1, 1), sample_rate,
             subtype="PCM_16")
    return Item(name, midi_rel, audio_rel, split)


def render_dataset(programs: list[tuple[str, str, pretty_midi.PrettyMIDI]],  # noqa: F821
                   out_dir: str | os.PathLike[str], soundfont: str, sample_rate: int,
                   meta: dict, progress: bool = True, force: bool = False,
                   jobs: int = 1) -> AudioCache:
    """Write ``(name, split, midi)`` programs, render them with FluidSynth, cache them.

    ``midi`` is a ``PrettyMIDI`` or a :class:`pianossm.data.large.Program` (generated in
    the worker); ``jobs`` worker processes render and cache (the result does not depend
    on it).
    """
    from tqdm import tqdm

    from pianossm.fluid import find_soundfont

    out_dir = os.fspath(out_dir).rstrip("/")
    if os.path.exists(out_dir) and not force:
        raise PianoSSMError(f"dataset folder exists: {out_dir!r} (use --force to rebuild)")
    sf_path = find_soundfont(soundfont)
    tmp = out_dir + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("midi", "audio"):
        os.makedirs(os.path.join(tmp, sub))
    tasks = ((name, split, pm, tmp, sf_path, sample_rate) for name, split, pm in programs)
    items = list(tqdm(ordered_map(_render_one, tasks, jobs), total=len(programs),
                      desc="render", unit="file", disable=not progress))
    manifest = {**meta, "soundfont": os.path.basename(sf_path), "sample_rate": sample_rate,
                "items": [asdict(i) for i in items]}
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    # The cache records file paths, so it is built once the folder has its final name.
    return build_cache(builtin_items(out_dir), os.path.join(out_dir, "cache"), sample_rate,
                       progress=progress, jobs=jobs)
