"""Core commands: ``render``, ``info``, ``import-checkpoint``."""

from __future__ import annotations

import argparse
import sys

from pianossm.options import ALIAS_MODE_NAMES, BITS, FRAME_GRIDS, NUMERICS

__all__ = ["register"]

_PAPER_K = {"XL": 268.4, "L": 142.4, "S": 79.4}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the core subcommands to ``sub``."""
    p = sub.add_parser("render", help="synthesise MIDI file(s) to WAV/FLAC")
    p.add_argument("midi", nargs="*", default=[],
                   help="input .mid file(s), folders of them or glob patterns; '-' reads one "
                        "from stdin (default: the built-in demo phrase)")
    p.add_argument("-o", "--output", required=True,
                   help="output .wav or .flac; '-' writes a WAV to stdout; a folder (ending "
                        "in '/' or existing) renders a batch into OUTDIR/NAME.wav")
    p.add_argument("--model", default=None, help="pianossm checkpoint or published .pth "
                   "(default: built-in model)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="synthesis rate in Hz (default: the model's training rate)")
    p.add_argument("--head", default=None,
                   help="output head by name or index (default: the model's first; "
                        "2009 for imported MAESTRO models)")
    p.add_argument("--bits", choices=list(BITS), default="16", help="sample format")
    p.add_argument("--tail", type=float, default=0.0,
                   help="seconds rendered after the last MIDI event (release)")
    p.add_argument("--float64", action="store_true", help="compute in float64")
    p.add_argument("--frame-grid", choices=list(FRAME_GRIDS), default="synth",
                   help="input frames on the synthesis rate's grid (the paper's) or on the "
                        "training rate's grid, which keeps note timing within one sample of "
                        "the model's own-rate rendering when switching rates")
    p.add_argument("--alias-mode", choices=list(ALIAS_MODE_NAMES), default="none",
                   help="how modes above the synthesis Nyquist frequency are discretised "
                        "(see pianossm.alias; none = the paper's)")
    p.add_argument("--numerics", choices=list(NUMERICS), default="exact",
                   help="exact: streaming, memory bounded (default); reference: the published "
                        "code's float32 whole-file scan, to reproduce its audio bit-closely")
    p.add_argument("--jobs", type=int, default=None,
                   help="batch: worker processes (default: the number of cores)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave inputs whose output exists alone (resume a batch)")
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


def _render(args: argparse.Namespace) -> int:
    """One file (or stdin/stdout) through :func:`pianossm.api.render`, or a batch."""
    import os

    from pianossm.errors import PianoSSMError

    out = args.output
    batch = (len(args.midi) > 1 or out.endswith(("/", os.sep)) or os.path.isdir(out)
             or any(os.path.isdir(m) or (not os.path.exists(m) and _is_glob(m))
                    for m in args.midi))
    if args.jobs is not None and args.jobs < 1:
        raise PianoSSMError(f"--jobs must be at least 1, got {args.jobs}")
    if batch:
        if "-" in args.midi or out == "-":
            raise PianoSSMError("'-' (stdin/stdout) takes one file, not a batch")
        if out.lower().endswith((".wav", ".flac")) and not os.path.isdir(out):
            what = (f"{args.midi[0]!r} is a folder: a batch needs" if len(args.midi) == 1
                    and os.path.isdir(args.midi[0]) else "several inputs need")
            raise PianoSSMError(f"{what} an output folder, not {out!r} (use -o OUTDIR/)")
        return _render_batch(args)
    if out != "-" and os.path.exists(out) and args.skip_existing:
        if not args.quiet:
            print(f"skipped {out}: it exists (--skip-existing)", file=sys.stderr)
        return 0
    _render_one(args)
    return 0


def _is_glob(spec: str) -> bool:
    import glob

    return glob.has_magic(spec)


def _options(args: argparse.Namespace) -> dict[str, object]:
    """Keyword options of :func:`pianossm.api.render` from the parsed arguments."""
    return dict(sample_rate=args.sample_rate, head=args.head, bits=args.bits, tail=args.tail,
                alias_mode=args.alias_mode, frame_grid=args.frame_grid,
                numerics=args.numerics, float64=args.float64)


def _render_one(args: argparse.Namespace) -> None:
    import os
    from importlib import resources

    from tqdm import tqdm

    from pianossm.api import open_model, read_midi, render

    if not args.midi:
        midi: object = resources.files("pianossm").joinpath("assets", "demo.mid").read_bytes()
    elif args.midi[0] == "-":
        midi = sys.stdin.buffer.read()
    else:
        midi = args.midi[0]
    if args.output != "-" and os.path.exists(args.output) and not args.force:
        from pianossm.errors import PianoSSMError

        raise PianoSSMError(f"output exists: {args.output!r} (use --force to overwrite)")
    bar: list[tqdm] = []

    def progress(done: float, total: float) -> None:
        if not bar:
            bar.append(tqdm(total=round(total, 1), unit="s", disable=args.quiet, desc="render",
                            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio "
                            "[{elapsed}<{remaining}]"))
        bar[0].update(done - bar[0].n)

    midi = read_midi(midi)  # bad MIDI is reported before the model is opened
    model = open_model(args.model)  # packed weights from the cache: torch only on a miss
    target = sys.stdout.buffer if args.output == "-" else args.output
    try:
        res = render(midi, target, model, force=args.force, progress=progress, **_options(args))
    finally:
        if bar:
            bar[0].close()
    via = f" (synthesised at {res.synth_rate} Hz)" if res.synth_rate != res.sample_rate else ""
    msg = (f"wrote {res.path}: {res.seconds:.2f} s at {res.sample_rate} Hz{via}, head "
           f"{res.head}, real-time factor {res.wall / max(res.seconds, 1e-9):.3f}")
    if res.clipped:
        msg += f"; {res.clipped} samples clipped to [-1, 1]"
    if not args.quiet:
        print(msg, file=sys.stderr)


def _render_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pianossm.batch import FileResult, collect_midi, render_batch
    from pianossm.errors import PianoSSMError

    midis = collect_midi(args.midi)
    if not midis:
        raise PianoSSMError("no MIDI files to render")
    bar = tqdm(total=len(midis), unit="file", desc="render", disable=args.quiet)

    def report(res: FileResult) -> None:
        if res.error is not None:
            bar.write(f"pianossm: error: {res.midi}: {res.error}", file=sys.stderr)
        bar.update(1)

    try:
        result = render_batch(midis, args.output, args.model or "default", args.jobs,
                              args.skip_existing, args.force, report, **_options(args))
    finally:
        bar.close()
    print(result.summary(), file=sys.stderr)
    return 1 if result.failed else 0


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
