"""``align-eval``: perturb the aligned MIDI of each item, align it back, compare methods."""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from pianossm.align.data import check_labels, list_items, load_item
from pianossm.align.metrics import onset_errors, summarize
from pianossm.align.perturb import PerturbConfig, coarse_perturb, perturb_notes
from pianossm.errors import PianoSSMError

__all__ = ["evaluate_folder", "evaluate_item"]


def evaluate_item(stem: str, methods: list[str], perturb: PerturbConfig,
                  rng: np.random.Generator, model: str | list[str] | None = None,
                  coarse: bool = False, wpe: bool = True) -> dict[str, np.ndarray]:
    """Absolute onset errors ``(N,)`` per method (and ``input``) on one data item.

    ``coarse``: the perturbation also changes the tempo by 3-10 % and shifts everything
    by 0.2-1 s (:func:`pianossm.align.perturb.coarse_perturb`).  ``wpe``: see
    :func:`pianossm.align.api.align_notes`.
    """
    import soundfile as sf

    from pianossm.align.api import align_notes

    cqt, notes = load_item(stem)
    bad = coarse_perturb(notes, rng, cfg=perturb) if coarse else perturb_notes(notes, perturb, rng)
    audio, _ = sf.read(stem + ".flac", dtype="float32")
    out = {"input": onset_errors(bad, notes)}
    for m in methods:
        out[m] = onset_errors(align_notes(audio, bad, m, model, cqt=cqt, wpe=wpe),
                              notes)
    return out


def evaluate_folder(folder: str, methods: list[str], perturb: PerturbConfig, seed: int = 0,
                    model: str | list[str] | None = None, limit: int = 0,
                    per_piece: str | None = None, coarse: bool = False,
                    wpe: bool = True) -> dict[str, dict[str, float]]:
    """Summaries (see :func:`pianossm.align.metrics.summarize`) per method over a folder.

    Each item gets its own perturbation, seeded by ``(seed, item index)``, shared by all
    methods.  ``per_piece`` (a CSV path) receives one row per item and method; ``coarse``
    and ``wpe`` see :func:`evaluate_item`.
    """
    from pianossm.align.api import METHODS

    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise PianoSSMError(f"unknown methods {bad or methods!r}; allowed: {list(METHODS)}")
    stems = list_items(folder)[:limit or None]
    check_labels(stems)  # the aligner returns where notes sound: so must the truth
    errors: dict[str, list[np.ndarray]] = {m: [] for m in ["input", *methods]}
    secs = {m: 0.0 for m in methods}
    rows = []
    for i, stem in enumerate(tqdm(stems, desc="align-eval")):
        t = time.perf_counter()
        res = evaluate_item(stem, methods, perturb, np.random.default_rng([seed, i]), model,
                            coarse, wpe)
        secs[methods[0]] += time.perf_counter() - t
        for m, e in res.items():
            errors[m].append(e)
            rows.append({"piece": os.path.basename(stem), "method": m, **summarize(e)})
    if per_piece:
        from pianossm.checkpoint import atomic_write

        keys = list(rows[0])

        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                f.write(",".join(keys) + "\n")
                f.writelines(",".join(str(r[k]) if isinstance(r[k], str) else f"{r[k]:.4f}"
                                     for k in keys) + "\n" for r in rows)
        atomic_write(per_piece, write)
    return {m: summarize(np.concatenate(e)) for m, e in errors.items()}
