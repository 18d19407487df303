"""Alignment commands: ``align``, ``align-eval``, ``align-data``, ``align-train``,
``align-timing``."""

from __future__ import annotations

import argparse
import glob
import os
import sys

from pianossm.errors import PianoSSMError

__all__ = ["add_model_args", "add_perturb_args", "add_wpe_arg", "models_from_args",
           "perturb_from_args", "register"]

_METHODS = ["crnn", "dtw", "dtw+crnn", "mrmsdtw", "mrmsdtw+crnn"]


def _seeds(text: str) -> range:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise PianoSSMError(f"seed range must look like START:STOP, got {text!r}") from None
    return range(a, b)


def add_perturb_args(p: argparse.ArgumentParser) -> None:
    """Add the perturbation model's flags (``--max-shift`` ... ``--offset-jitter``) to ``p``."""
    g = p.add_argument_group("perturbation model (seconds; see pianossm.align.perturb)")
    g.add_argument("--max-shift", type=float, default=0.1, help="clip of each displacement")
    g.add_argument("--offset", type=float, default=0.05, help="global offset amplitude")
    g.add_argument("--drift", type=float, default=0.05, help="smooth tempo-drift amplitude")
    g.add_argument("--jitter", type=float, default=0.03, help="per-note onset jitter")
    g.add_argument("--offset-jitter", type=float, default=0.05, help="per-note offset jitter")


def add_model_args(p: argparse.ArgumentParser, several: bool = False,
                   passes: bool = True) -> None:
    """Add ``--model`` (with ``several``: checkpoints separated by commas, read by
    :func:`models_from_args`) and, with ``passes``, ``--refine-model`` and ``--half-model``
    (the networks of the refinement and half-frame passes) and ``--selector`` to ``p``."""
    p.add_argument("--model", default=None,
                   help="CRNN checkpoint of the first decodes, or several separated by commas "
                        "(their times averaged; default: the shipped one)" if several else
                        "CRNN checkpoint of the first decodes (default: the shipped one)")
    if passes:
        p.add_argument("--refine-model", default=None,
                       help="CRNN checkpoint of the refinement passes (default: the shipped "
                            "one, or --model when that is given)")
        p.add_argument("--half-model", default=None,
                       help="CRNN checkpoint of the half-frame pass (default: the shipped "
                            "one, or --model when that is given)")
        p.add_argument("--selector", default=None,
                       help="decode selector (.npz, pianossm.align.select) that picks "
                            "between each note's refined decodes (default: the shipped one, "
                            "or none when --model is given)")
        p.add_argument("--no-selector", dest="selector", action="store_const", const=False,
                       help="pick between the refined decodes by their onset logits")


def models_from_args(args: argparse.Namespace) -> list[str] | None:
    """The checkpoints of :func:`add_model_args`' ``--model`` with ``several`` (None: the
    shipped one)."""
    return args.model.split(",") if args.model else None


def add_wpe_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--wpe/--no-wpe`` to ``p``."""
    p.add_argument("--wpe", action=argparse.BooleanOptionalAction, default=True,
                   help="the CRNN reads the CQT of the audio's WPE linear-prediction "
                        "error, where attacks stand out above sustain and reverberation "
                        "(default; the DTW stage reads the audio as it is; --no-wpe: the "
                        "CRNN too)")


def perturb_from_args(args: argparse.Namespace) -> PerturbConfig:  # noqa: F821
    """The :class:`~pianossm.align.perturb.PerturbConfig` of :func:`add_perturb_args`' flags."""
    from pianossm.align.perturb import PerturbConfig

    return PerturbConfig(args.max_shift, args.offset, args.drift, args.jitter,
                         args.offset_jitter)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the alignment subcommands to ``sub``."""
    p = sub.add_parser("align", help="align a MIDI file to a piano recording, note by note")
    p.add_argument("audio", help="recording (.wav, .flac, ...)")
    p.add_argument("midi", help="roughly timed .mid")
    p.add_argument("-o", "--output", required=True, help="aligned .mid")
    p.add_argument("--method", choices=_METHODS, default="dtw+crnn")
    add_model_args(p)
    p.add_argument("--report", default=None,
                   help="CSV of every note's old and new times and its confidence")
    p.add_argument("--search", type=float, default=0.15,
                   help="CRNN decoding window half-width in seconds")
    p.add_argument("--force", action="store_true", help="overwrite outputs")
    add_wpe_arg(p)
    p.set_defaults(func=_align)

    p = sub.add_parser("align-eval", help="perturb aligned MIDI, align back, compare methods")
    p.add_argument("data", help="data folder made by align-data (real pairs: --import-pairs)")
    p.add_argument("--methods", default="dtw,mrmsdtw,crnn,dtw+crnn",
                   help=f"comma-separated, from {_METHODS}")
    p.add_argument("--model", default=None,
                   help="CRNN checkpoint (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    p.add_argument("--limit", type=int, default=0, help="use only the first N items")
    p.add_argument("--per-piece", default=None, help="CSV of per-piece results")
    p.add_argument("--coarse", action="store_true",
                   help="also change the tempo by 3-10 %% and offset by 0.2-1 s")
    add_wpe_arg(p)
    add_perturb_args(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("align-data",
                       help="render generated pieces or given MIDI files (or import pairs)")
    p.add_argument("output", help="data folder")
    p.add_argument("--seeds", default="0:200",
                   help="START:STOP seeds of generated pieces (with --midi: START only)")
    p.add_argument("--soundfont", action="append", default=None,
                   help="SoundFont name or path (repeatable; default fluidr3)")
    p.add_argument("--seconds", type=float, default=30.0, help="piece length")
    p.add_argument("--room", action="append", default=None,
                   help="recording condition (repeatable): dry, close, ambient (training), "
                        "studio, hall (held out); adds mic EQ, 20-50 dB noise, compression")
    p.add_argument("--synth", action="append", default=None,
                   help="play the pieces with this Piano-SSM model instead of a SoundFont "
                        "(repeatable; a published MAESTRO .pth, a pianossm checkpoint or "
                        "'default'); its head is drawn per item, notes labelled at their "
                        "note-ons; --room adds a room on top")
    p.add_argument("--import-pairs", default=None,
                   help="import real audio+MIDI pairs (MAESTRO, MAPS) from this folder")
    p.add_argument("--midi", action="append", default=None,
                   help="render these MIDI files (repeatable; a folder means its .mid/.midi "
                        "files; glob patterns too) instead of generated pieces; file j "
                        "takes seed START + j")
    p.set_defaults(func=_data)

    p = sub.add_parser("align-train", help="train the alignment CRNN (resumable)")
    p.add_argument("data", help="training data folder")
    p.add_argument("--val", default=None, help="validation data folder")
    p.add_argument("--run", required=True, help="run folder (resumes from run/last.pt)")
    p.add_argument("--steps", type=int, default=220)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="segment length")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after (0: no limit)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export", default=None, help="write the shipped form here at the end")
    p.add_argument("--soft-onsets", action="store_true",
                   help="sub-frame onset targets (two frames); the model is then decoded by "
                        "centroid")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint's weights (fine-tuning; ignored on resume)")
    p.add_argument("--local-head", action="store_true",
                   help="add a per-key path from the convolutions to the logits (zero at "
                        "first: with --init the network starts as that checkpoint's)")
    p.add_argument("--local-harmonics", type=int, default=0,
                   help="the per-key path (implies --local-head) also reads the keys of "
                        "this many harmonics above each key (12, 19, 24, ... keys up; 0-16)")
    p.add_argument("--focal", type=float, default=0.0,
                   help="weight each note's onset loss by (1 - p) ** FOCAL, p the "
                        "probability given to its true frame (0: plain; validation stays "
                        "plain)")
    p.add_argument("--velocity", action="store_true",
                   help="a fourth input channel, the notes' velocities (zero weights at "
                        "first: with --init the network starts as that checkpoint's)")
    p.add_argument("--plain-cqt", action="store_true",
                   help="one more input channel, the CQT of the recording itself beside "
                        "that of its WPE prediction error (data folders made by "
                        "scripts/align_wpe_data.py; zero weights at first: with --init the "
                        "network starts as that checkpoint's)")
    p.add_argument("--plain-lr-scale", type=float, default=1.0,
                   help="multiply each step's change of the plain-CQT channel's weights "
                        "(zero in a widened network: they barely move at a fine-tuning rate)")
    p.add_argument("--key-context", type=int, default=0,
                   help="add a per-key temporal path of this many dilated convolutions "
                        "along time (dilations 2, 4, 8, ... frames; 1-7; zero output at "
                        "first: with --init the network starts as that checkpoint's)")
    p.add_argument("--key-lr-scale", type=float, default=1.0,
                   help="learning-rate multiplier for the per-key temporal path's weights "
                        "(a path added with --key-context starts at zero)")
    p.add_argument("--save-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the segments drawn, their perturbations and the network's "
                        "initialisation (runs from one --init differ only by it)")
    add_perturb_args(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("align-timing",
                       help="onset-timing accuracy of synthesised audio vs its MIDI")
    p.add_argument("audio", help="synthesised audio")
    p.add_argument("midi", help="the MIDI it was rendered from")
    p.add_argument("--method", choices=_METHODS, default="crnn",
                   help="alignment method (default crnn: the audio starts at MIDI time 0)")
    p.set_defaults(func=_timing)


def _align(args: argparse.Namespace) -> None:
    import os

    from pianossm.align.api import UNSURE, align_files
    from pianossm.errors import PianoSSMError

    for path in (args.output, args.report):
        if path and os.path.exists(path) and not args.force:
            raise PianoSSMError(f"output exists: {path!r} (use --force to overwrite)")
    info = align_files(args.audio, args.midi, args.output, args.method, args.model,
                       args.report, args.search, args.wpe, args.refine_model,
                       args.half_model, args.selector)
    unsure = (f"; {info['unsure']} unsure (confidence below {UNSURE:g}"
              f"{', see ' + args.report if args.report else ': --report lists them'})"
              if "crnn" in args.method else "")
    print(f"wrote {args.output}: {info['notes']} notes aligned by {args.method}; onset "
          f"shift median {info['median_shift_ms']:.1f} ms, max {info['max_shift_ms']:.1f} ms"
          f"{unsure} ({info['seconds']:.1f} s)", file=sys.stderr)


def _eval(args: argparse.Namespace) -> None:
    from pianossm.align.evaluate import evaluate_folder
    from pianossm.align.metrics import format_table

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = evaluate_folder(args.data, methods, perturb_from_args(args), args.seed, args.model,
                           args.limit, args.per_piece, args.coarse, args.wpe)
    print(format_table(rows))


def _data(args: argparse.Namespace) -> None:
    from pianossm.align.data import build_from_pairs, build_rendered

    if args.import_pairs:
        n = build_from_pairs(args.import_pairs, args.output)
        print(f"imported {n} pairs into {args.output}", file=sys.stderr)
        return
    if args.synth and args.soundfont:
        raise PianoSSMError("--synth and --soundfont exclude each other (a piece is played "
                            "by one piano)")
    files = None
    if args.midi:
        from pianossm.batch import collect_midi

        for m in args.midi:  # collect_midi leaves a missing file to its caller's later report
            if not os.path.exists(m) and not glob.has_magic(m):
                raise PianoSSMError(f"--midi {m!r}: no such file or folder")
        files = collect_midi(args.midi)
    build_rendered(args.output, _seeds(args.seeds), tuple(args.soundfont or ["fluidr3"]),
                   args.seconds, rooms=tuple(args.room or ()), midi_files=files,
                   synths=tuple(args.synth or ()))


def _train(args: argparse.Namespace) -> None:
    from pianossm.align.model import CRNNConfig
    from pianossm.align.notes import FPS
    from pianossm.align.train import TrainConfig, export, train

    cfg = TrainConfig(steps=args.steps, batch=args.batch, frames=int(args.seconds * FPS),
                      lr=args.lr, threads=args.threads, minutes=args.minutes,
                      save_every=args.save_every, soft_onsets=args.soft_onsets,
                      focal=args.focal, key_lr_scale=args.key_lr_scale,
                      plain_lr_scale=args.plain_lr_scale, seed=args.seed)
    last = train(args.data, args.run, cfg, args.val, perturb_from_args(args),
                 model_cfg=CRNNConfig(local_head=args.local_head or args.local_harmonics > 0,
                                      local_harmonics=args.local_harmonics,
                                      velocity=args.velocity,
                                      plain_cqt=args.plain_cqt,
                                      key_context=args.key_context),
                 log=lambda s: print(s, file=sys.stderr, flush=True), init=args.init)
    if args.export:
        export(last, args.export, command="pianossm " + " ".join(sys.argv[1:]))
        print(f"wrote {args.export}", file=sys.stderr)


def _timing(args: argparse.Namespace) -> None:
    from pianossm.align.timing import synthesis_timing_report
    from pianossm.audio import read_audio

    audio, sr = read_audio(args.audio)
    rep = synthesis_timing_report(audio, sr, args.midi, args.method)
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in rep.items()))
