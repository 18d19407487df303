"""``pianossm analyze``: eigenvalue frequencies, decay times, aliasing table and plot."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to ``sub``."""
    p = sub.add_parser("analyze", help="eigenvalue frequencies/decays and aliasing per layer")
    p.add_argument("model", help="'default', a pianossm checkpoint or a published .pth")
    p.add_argument("--synth-rate", type=int, action="append", default=None,
                   help="rate(s) to tabulate (default: the standard rates below training)")
    p.add_argument("--plot", default=None, help="write the f-over-tau plot to this .png")
    p.add_argument("--modes", action="store_true", help="also list every mode (f, tau)")
    p.set_defaults(func=_analyze)


def _analyze(args: argparse.Namespace) -> None:
    import numpy as np

    from pianossm.analysis import STANDARD_RATES, alias_table, layer_spectra, plot_spectra
    from pianossm.api import load_model

    model = load_model(args.model)  # "default", a checkpoint or a published .pth
    cfg = model.config
    rates = tuple(args.synth_rate) if args.synth_rate else STANDARD_RATES
    spectra = layer_spectra(model)
    print(f"Piano-SSM {cfg.preset}, H={cfg.d_state}, trained at {cfg.train_sample_rate} Hz, "
          f"{sum(len(s.freq_hz) for s in spectra)} modes")
    print(f"{'layer':<7}{'f median Hz':>12}{'f max Hz':>10}{'tau median ms':>15}"
          f"{'tau max s':>11}")
    for i, s in enumerate(spectra):
        print(f"{i + 1:<7}{np.median(s.freq_hz):>12.0f}{s.freq_hz.max():>10.0f}"
              f"{1e3 * np.median(s.tau_s):>15.2f}{s.tau_s.max():>11.3f}")
    rows = alias_table(model, rates)
    if rows:
        print("\naliased eigenvalues (f > f_synth / 2)")
        head = "".join(f"{f'L{i + 1}':>6}" for i in range(len(spectra)))
        print(f"{'f_synth':>8}{head}{'total':>7}{'share':>8}")
        for r in rows:
            cells = "".join(f"{n:>6}" for n in r["per_layer"])
            print(f"{r['rate']:>8}{cells}{r['total']:>7}{100 * r['share']:>7.1f}%")
    else:
        print("\nno requested rate is below the training rate: nothing aliases")
    if args.modes:
        for i, s in enumerate(spectra):
            for f, t in zip(s.freq_hz, s.tau_s):
                print(f"mode L{i + 1} f={f:.2f} Hz tau={t:.6g} s")
    if args.plot:
        plot_spectra(model, args.plot, tuple(r for r in (24000, 16000)
                                              if r < cfg.train_sample_rate))
        print(f"\nwrote {args.plot}")
