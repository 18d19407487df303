"""Data and training commands: ``dataset build``, ``dataset render``, ``train``, ``evaluate``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the dataset, train and evaluate subcommands to ``sub``."""
    from pianossm.train.config import TrainConfig

    p = sub.add_parser("dataset", help="build the built-in dataset or a training cache")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="generate MIDI, render it with FluidSynth, cache it")
    b.add_argument("-o", "--output", required=True, help="dataset folder to create")
    b.add_argument("--soundfont", default="fluidr3",
                   help="SoundFont: fluidr3, musescore or a .sf2/.sf3 path (default fluidr3)")
    b.add_argument("--sample-rate", type=int, default=16000, help="rate in Hz (default 16000)")
    b.add_argument("--seed", type=int, default=0, help="seed of the generated MIDI")
    b.add_argument("--size", choices=["large", "full", "tiny"], default="full",
                   help="large (about 9 h of audio), full (about 25 min) or tiny (for tests)")
    b.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: 1, or every core for --size large)")
    b.add_argument("--force", action="store_true", help="replace an existing folder")
    b.add_argument("--features", default="roll", metavar="LAYOUT",
                   help="input layout the cache holds: roll (default) or roll+onset+pedal")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_dataset_build)

    f = dsub.add_parser("features", help="add an input layout's channels to an existing "
                        "cache, from its MIDI files (the audio is not read again)")
    f.add_argument("--data", required=True, help="dataset folder (with cache/) or cache folder")
    f.add_argument("--features", required=True, metavar="LAYOUT",
                   help="layout to hold, e.g. roll+onset+pedal")
    f.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_dataset_features)

    m = dsub.add_parser("from-midi", help="render given MIDI files with FluidSynth into a "
                        "dataset (references for evaluate)")
    m.add_argument("midi", nargs="+", help=".mid files")
    m.add_argument("-o", "--output", required=True, help="dataset folder to create")
    m.add_argument("--soundfont", default="fluidr3", help="fluidr3, musescore or a path")
    m.add_argument("--sample-rate", type=int, default=16000, help="rate in Hz (default 16000)")
    m.add_argument("--split", default="test", help="split of the files (default test)")
    m.add_argument("--force", action="store_true", help="replace an existing folder")
    m.set_defaults(func=_dataset_from_midi)

    c = dsub.add_parser("cache", help="cache MAESTRO or MAPS for training")
    c.add_argument("kind", choices=["maestro", "maps"])
    c.add_argument("root", help="MAESTRO v3 folder (with maestro-v3.0.0.csv) or MAPS folder")
    c.add_argument("-o", "--output", required=True, help="cache folder to create")
    c.add_argument("--sample-rate", type=int, default=16000, help="rate in Hz (default 16000)")
    c.add_argument("--force", action="store_true", help="replace an existing cache")
    c.add_argument("--features", default="roll", metavar="LAYOUT",
                   help="input layout to store: roll (default) or roll+onset+pedal")
    c.set_defaults(func=_dataset_cache)

    r = dsub.add_parser("render", help="render a split's MIDI with another SoundFont "
                        "(a yardstick for evaluate --wavs)")
    r.add_argument("--data", required=True, help="dataset folder")
    r.add_argument("--soundfont", required=True, help="fluidr3, musescore or a path")
    r.add_argument("--split", default="test", help="split to render (default test)")
    r.add_argument("-o", "--output", required=True, help="folder for NAME.wav files")
    r.set_defaults(func=_dataset_render)

    t = sub.add_parser("train", help="train a Piano-SSM model on a dataset cache")
    t.add_argument("--config", default=None, help="TOML/JSON file of defaults (keys = flags)")
    t.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt (model, optimizer, schedule, RNG, step)")
    t.add_argument("--force", action="store_true", help="start over in an existing OUT")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            t.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str, "int | None": int}.get(str(f.type), str)
            t.add_argument(flag, type=kind, default=None, help=f"(default {f.default!r})")
    t.set_defaults(func=_train)

    from pianossm.options import ALIAS_MODE_NAMES as ALIAS_MODES
    from pianossm.options import FRAME_GRIDS

    e = sub.add_parser("evaluate", help="MSSL over 10 s windows, per piece and mean "
                       "(--timing: onset timing of whole pieces against their MIDI)")
    e.add_argument("--data", required=True, help="dataset or cache folder with references")
    e.add_argument("--model", action="append", default=[], help="checkpoint (repeatable; "
                   "'default' is the built-in model)")
    e.add_argument("--wavs", action="append", default=[],
                   help="folder of NAME.wav/.flac candidates (repeatable)")
    e.add_argument("--silence", action="store_true", help="also score silence")
    e.add_argument("--split", default="test", help="split to score (default test)")
    e.add_argument("--synth-rate", type=int, default=None,
                   help="synthesise models at this rate, resampled to the reference rate")
    e.add_argument("--seconds", type=float, default=10.0, help="window length (default 10)")
    e.add_argument("--frame-grid", default="synth", choices=list(FRAME_GRIDS),
                   help="models' input frames on the synthesis rate's grid (the paper's) or "
                        "the training rate's (see pianossm render --frame-grid)")
    e.add_argument("--alias-mode", default="none", metavar="MODE",
                   help="how models discretise modes above the synthesis Nyquist frequency: "
                   f"{', '.join(ALIAS_MODES)} (default none, the paper's; oversample runs "
                   "the model faster and resamples down with soxr)")
    e.add_argument("--timing", action="store_true",
                   help="instead of MSSL: synthesise (or read) each whole piece of the split, "
                   "align it to its own MIDI file and report the onset errors per piece and "
                   "over all notes (mean/median |error|, bias, share within 10/25/50/100 ms)")
    e.add_argument("--timing-method", default="crnn", metavar="METHOD",
                   help="alignment method of --timing (default crnn: each note is searched "
                   "within 150 ms of its MIDI onset, so errors above that are not measured; "
                   "dtw / dtw+crnn first align globally, which can fail on poor audio)")
    e.add_argument("--csv", default=None, help="write per-window scores (with --timing: "
                   "per-piece and overall timing statistics) to this CSV")
    e.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    e.set_defaults(func=_evaluate)


def _dataset_build(args: argparse.Namespace) -> None:
    from pianossm.data.builtin import build_builtin
    from pianossm.data.cache import add_features
    from pianossm.features import feature_channels

    feature_channels(args.features)  # refuse an unknown layout before rendering anything
    cache = build_builtin(args.output, args.soundfont, args.sample_rate, args.seed, args.size,
                          progress=not args.quiet, force=args.force, jobs=args.jobs)
    if args.features != "roll":
        cache = add_features(cache.path, args.features, progress=not args.quiet,
                             jobs=args.jobs or 1)
    parts = ", ".join(f"{s} {cache.seconds(s):.0f} s" for s in ("train", "validation", "test"))
    print(f"wrote {args.output}: {parts}", file=sys.stderr)


def _dataset_from_midi(args: argparse.Namespace) -> None:
    from pianossm.data.builtin import build_from_midi

    cache = build_from_midi(args.midi, args.output, args.soundfont, args.sample_rate,
                            args.split, force=args.force)
    print(f"wrote {args.output}: {len(cache.items)} file(s), {cache.seconds():.1f} s",
          file=sys.stderr)


def _dataset_cache(args: argparse.Namespace) -> None:
    from pianossm.data.cache import build_cache

    if args.kind == "maestro":
        from pianossm.data.maestro import maestro_items as items_of
    else:
        from pianossm.data.maps import maps_items as items_of
    cache = build_cache(items_of(args.root), args.output, args.sample_rate, force=args.force,
                        features=args.features)
    print(f"wrote {args.output}: {cache.seconds() / 3600:.2f} h", file=sys.stderr)


def _dataset_features(args: argparse.Namespace) -> None:
    from pianossm.data.cache import add_features

    inner = os.path.join(args.data, "cache")
    path = inner if os.path.isfile(os.path.join(inner, "index.json")) else args.data
    cache = add_features(path, args.features, progress=not args.quiet, jobs=args.jobs)
    print(f"{path}: holds {cache.layout} ({len(cache.items)} items)", file=sys.stderr)


def _dataset_render(args: argparse.Namespace) -> None:
    import soundfile as sf

    from pianossm.data.builtin import builtin_items
    from pianossm.fluid import render_fluidsynth
    from pianossm.fsutil import atomic_write
    from pianossm.train.trainer import open_cache

    rate = open_cache(args.data).sample_rate
    os.makedirs(args.output, exist_ok=True)
    for item in builtin_items(args.data):
        if item.split == args.split:
            audio = render_fluidsynth(item.midi, rate, args.soundfont)
            atomic_write(os.path.join(args.output, item.name + ".wav"),  # never half-written
                         lambda tmp, a=audio: sf.write(tmp, a, rate, "FLOAT", format="WAV"))
    print(f"wrote {args.output}", file=sys.stderr)


def _train(args: argparse.Namespace) -> None:
    from pianossm.errors import PianoSSMError
    from pianossm.train import TrainConfig, Trainer
    from pianossm.train.config import load_config_file

    values = load_config_file(args.config) if args.config else {}
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name)
        if given is not None:
            values[f.name] = given
    cfg = TrainConfig(**values)
    last = os.path.join(cfg.out, "last.pt")
    if os.path.exists(last) and not (args.resume or args.force):
        raise PianoSSMError(f"{last!r} exists: pass --resume to continue or --force to restart")
    resuming = bool(args.resume and os.path.exists(last))
    trainer = Trainer(cfg, progress=not args.quiet, load_init=not resuming)
    if resuming:
        trainer.resume(last)
    elif args.force and trainer.rank == 0:  # under torchrun only rank 0 owns the files
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(cfg.out, "metrics.jsonl"))
    trainer.run()
    if trainer.rank == 0:
        print(f"done: {cfg.out}/last.pt, best validation MSSL {trainer.best:.4f} "
              f"({cfg.out}/best.pt)", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> None:
    import torch

    from pianossm.alias import ALIAS_MODES
    from pianossm.align.api import METHODS
    from pianossm.checkpoint import load_model
    from pianossm.errors import PianoSSMError
    from pianossm.evaluate import (
        evaluate_timing,
        evaluate_windows,
        folder_piece_source,
        folder_source,
        format_table,
        format_timing_table,
        model_piece_source,
        model_source,
        silence_source,
        write_csv,
        write_timing_csv,
    )
    from pianossm.render import default_model_path
    from pianossm.train.trainer import open_cache

    if args.alias_mode not in ALIAS_MODES:
        raise PianoSSMError(f"unknown --alias-mode {args.alias_mode!r}; allowed: "
                            f"{', '.join(ALIAS_MODES)}")
    if args.timing and args.timing_method not in METHODS:
        raise PianoSSMError(f"unknown --timing-method {args.timing_method!r}; allowed: "
                            f"{', '.join(METHODS)}")
    if args.timing and args.frame_grid != "synth":
        raise PianoSSMError("--frame-grid train applies to the MSSL windows; leave it out "
                            "with --timing")
    if args.timing and args.silence:
        raise PianoSSMError("--silence has no onsets to time: leave it out with --timing")
    if args.synth_rate is not None and args.synth_rate <= 0:
        raise PianoSSMError(f"--synth-rate must be a positive rate in Hz, got {args.synth_rate}")
    torch.set_num_threads(args.threads)
    cache = open_cache(args.data)
    sources = {}
    paths = [default_model_path() if m == "default" else m for m in args.model]
    all_names = _column_names(paths + [os.path.normpath(w) for w in args.wavs])
    if len(set(all_names)) < len(all_names):
        raise PianoSSMError(f"a model or folder is given twice: {all_names}")
    names = iter(all_names)
    for path in paths:
        model = load_model(path)
        if args.timing:
            src = model_piece_source(model, cache, args.synth_rate or cache.sample_rate,
                                     alias_mode=args.alias_mode)
        else:
            src = model_source(model, cache, args.synth_rate, alias_mode=args.alias_mode,
                               frame_grid=args.frame_grid)
        sources[next(names)] = src
    for w in args.wavs:
        if not os.path.isdir(w):
            raise PianoSSMError(f"--wavs folder not found: {w!r}")
        sources[next(names)] = (
            folder_piece_source(w, cache) if args.timing else folder_source(w, cache))
    if args.silence:
        sources["silence"] = silence_source(cache)
    if not sources:
        raise PianoSSMError("nothing to evaluate: pass --model, --wavs or --silence")
    if args.timing:
        timings = {name: evaluate_timing(cache, src, args.split, args.timing_method,
                                         progress=True, desc=f"timing {name}")
                   for name, src in sources.items()}
        print(format_timing_table(timings))
        if args.csv:
            write_timing_csv(args.csv, timings)
        return
    columns = {name: evaluate_windows(cache, src, args.split, args.seconds, progress=True)
               for name, src in sources.items()}
    print(format_table(columns))
    if args.csv:
        write_csv(args.csv, columns)


def _column_names(paths: list[str]) -> list[str]:
    """Column names: each path's shortest trailing part that no other path shares.

    ``["runs/a/last.pt", "runs/b/last.pt", "x.pt"]`` gives ``["a/last.pt", "b/last.pt", "x.pt"]``.
    """
    split = [os.path.normpath(p).split(os.sep) for p in paths]
    names = []
    for parts in split:
        for k in range(1, len(parts) + 1):
            tail = parts[-k:]
            if sum(other[-k:] == tail for other in split) == 1 or k == len(parts):
                names.append("/".join(tail))
                break
    return names
