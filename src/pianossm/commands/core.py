"""Core commands: ``render``, ``info``, ``import-checkpoint``."""

from __future__ import annotations

import argparse
import sys
import time

from pianossm.alias import ALIAS_MODES
from pianossm.render import FRAME_GRIDS

__all__ = ["register"]

_PAPER_K = {"XL": 268.4, "L": 142.4, "S": 79.4}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the core subcommands to ``sub``."""
    p = sub.add_parser("render", help="synthesise a MIDI file to WAV/FLAC")
    p.add_argument("midi", nargs="?", default=None,
                   help="input .mid (default: the built-in demo phrase)")
    p.add_argument("-o", "--output", required=True, help="output .wav or .flac")
    p.add_argument("--model", default=None, help="pianossm checkpoint (default: built-in model)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="synthesis rate in Hz (default: the model's training rate)")
    p.add_argument("--head", default=None,
                   help="output head by name or index (default: the model's first; "
                        "2009 for imported MAESTRO models)")
    p.add_argument("--bits", choices=["16", "24", "float"], default="16", help="sample format")
    p.add_argument("--tail", type=float, default=0.0,
                   help="seconds rendered after the last MIDI event (release)")
    p.add_argument("--float64", action="store_true", help="compute in float64")
    p.add_argument("--frame-grid", choices=list(FRAME_GRIDS), default="synth",
                   help="input frames on the synthesis rate's grid (the paper's) or on the "
                        "training rate's grid, which keeps note timing within one sample of "
                        "the model's own-rate rendering when switching rates")
    p.add_argument("--alias-mode", choices=list(ALIAS_MODES), default="none",
                   help="how modes above the synthesis Nyquist frequency are discretised "
                        "(see pianossm.alias; none = the paper's)")
    p.add_argument("--numerics", choices=["exact", "reference"], default="exact",
                   help="exact: streaming, memory bounded (default); reference: the published "
                        "code's float32 whole-file scan, to reproduce its audio bit-closely")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_render)

    p = sub.add_parser("info", help="parameter table of a preset or checkpoint")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", choices=["XL", "L", "S"], default=None)
    g.add_argument("--model", default=None, help="pianossm checkpoint")
    p.set_defaults(func=_info)

    p = sub.add_parser("import-checkpoint",
                       help="convert a published Piano-SSM .pth into a pianossm checkpoint")
    p.add_argument("path", help="PianoSSM_{S,L,XL}_MH_maestro_all_{rate}_model.pth")
    p.add_argument("-o", "--output", required=True, help="output .pt")
    p.add_argument("--train-sample-rate", type=int, default=None,
                   help="training rate (default: read from the file name)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=_import)


def _render(args: argparse.Namespace) -> None:
    import os
    from importlib import resources

    import torch
    from tqdm import tqdm

    from pianossm.alias import internal_rate, resample_blocks
    from pianossm.audio import AudioWriter
    from pianossm.checkpoint import load_model
    from pianossm.errors import PianoSSMError
    from pianossm.features import PianoRoll, frame_hop, load_midi
    from pianossm.render import (
        BLOCK_FRAMES,
        default_model_path,
        render_blocks,
        training_frame_rate,
    )

    midi_path = args.midi or os.fspath(resources.files("pianossm") / "assets" / "demo.mid")
    if os.path.exists(args.output) and not args.force:
        raise PianoSSMError(f"output exists: {args.output!r} (use --force to overwrite)")
    midi = load_midi(midi_path)
    model = load_model(args.model or default_model_path())
    model.set_alias_mode(args.alias_mode)
    out_rate = args.sample_rate or model.config.train_sample_rate
    rate = internal_rate(args.alias_mode, model.config.train_sample_rate, out_rate)
    hop = frame_hop(rate)
    head = model.resolve_head(args.head)
    if args.frame_grid == "train" and args.numerics == "reference":
        raise PianoSSMError("--frame-grid train works with --numerics exact only")
    fps = training_frame_rate(model) if args.frame_grid == "train" else rate / hop
    roll = PianoRoll(midi, fps, model.config.pedal_threshold)
    total = roll.n_frames + round(args.tail * roll.fs)
    start = time.perf_counter()
    dtype = torch.float64 if args.float64 else torch.float32
    with AudioWriter(args.output, out_rate, args.bits, force=args.force) as out, tqdm(
            total=total / roll.fs, unit="s", unit_scale=False, disable=args.quiet,
            desc="render", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio "
            "[{elapsed}<{remaining}]") as bar:
        blocks = (_reference_blocks(model, roll, rate, head, total) if args.numerics ==
                  "reference" else render_blocks(model, roll, rate, head, args.tail,
                                                 BLOCK_FRAMES, dtype, args.frame_grid))
        for block in resample_blocks(blocks, rate, out_rate):
            out.write(block)
            bar.update(len(block) / out_rate)
    wall = time.perf_counter() - start
    seconds = out.frames / out_rate
    via = f" (synthesised at {rate} Hz)" if rate != out_rate else ""
    msg = (f"wrote {args.output}: {seconds:.2f} s at {out_rate} Hz{via}, head "
           f"{model.config.heads[head]}, real-time factor {wall / max(seconds, 1e-9):.3f}")
    if out.clipped:
        msg += f"; {out.clipped} samples clipped to [-1, 1]"
    if not args.quiet:
        print(msg, file=sys.stderr)


def _reference_blocks(model: PianoSSM, roll: PianoRoll, rate: int, head: int,  # noqa: F821
                      total: int) -> Iterator[np.ndarray]:  # noqa: F821
    """The whole file through :func:`pianossm.compat.reference_forward`, as one block."""
    import torch

    from pianossm.compat import reference_forward
    from pianossm.features import frame_hop

    feats = torch.from_numpy(roll.frames(0, total))[None]
    yield reference_forward(model, feats, frame_hop(rate), model.ts_for(rate), head)[0].numpy()


def _info(args: argparse.Namespace) -> None:
    from pianossm.checkpoint import load_checkpoint
    from pianossm.config import preset
    from pianossm.params import layer_counts, model_count, paper_count

    configs = ([load_checkpoint(args.model)["config"]] if args.model else
               [preset(args.preset)] if args.preset else [preset(n) for n in ("XL", "L", "S")])
    for cfg in configs:
        print(f"Piano-SSM {cfg.preset}: H={cfg.d_state}, widths "
              f"{'->'.join(map(str, cfg.widths))}, trained at {cfg.train_sample_rate} Hz, "
              f"{len(cfg.heads)} head(s)")
        print(f"{'layer':<7}{'in->out':>9}{'eig':>7}{'B':>8}{'b':>6}{'C':>8}{'c':>5}"
              f"{'skip':>6}{'total':>8}")
        rows = layer_counts(cfg)
        for i, r in enumerate(rows):
            print(f"{i + 1:<7}{f'{cfg.widths[i]}->{cfg.widths[i + 1]}':>9}{r['eig']:>7}"
                  f"{r['B']:>8}{r['b']:>6}{r['C']:>8}{r['c']:>5}{r['skip']:>6}{r['total']:>8}")
        heads = len(cfg.heads) * (cfg.widths[-1] + 1)
        print(f"{'heads':<7}{f'{len(cfg.heads)}x({cfg.widths[-1]}->1)':>9}{'':>47}{heads:>8}")
        paper = paper_count(cfg)
        print(f"model total: {model_count(cfg)} (complex counted as 2 reals)")
        ref = f" (paper: {_PAPER_K[cfg.preset]}k)" if cfg.preset in _PAPER_K else ""
        print(f"paper formula: {paper} = {paper / 1000:.1f}k{ref}")
        print(f"difference: the paper's count includes an 88x88 skip in layer 1 "
              f"({cfg.widths[0] * cfg.widths[1]}) that the published model does not have, "
              f"and one head; multi-head adds {cfg.widths[-1] + 1} per extra head.\n")


def _import(args: argparse.Namespace) -> None:
    import os

    from pianossm.checkpoint import import_official, save_checkpoint
    from pianossm.errors import PianoSSMError

    if os.path.exists(args.output) and not args.force:
        raise PianoSSMError(f"output exists: {args.output!r} (use --force to overwrite)")
    model = import_official(args.path, args.train_sample_rate)
    save_checkpoint(args.output, model, source=os.path.basename(args.path))
    cfg = model.config
    print(f"wrote {args.output}: Piano-SSM {cfg.preset} trained at {cfg.train_sample_rate} Hz, "
          f"heads {', '.join(cfg.heads)}", file=sys.stderr)
