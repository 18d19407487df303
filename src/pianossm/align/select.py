"""A learnt choice between the CRNN's decodes of a note (a re-ranker).

:func:`pianossm.align.api.align_notes` decodes every note from several starts and refines
each decode; the shipped pipeline keeps, per note, the refinement with the highest onset
logit.  On the development excerpts half of the notes that end more than 25 ms from their
attack had one refinement within 25 ms (README, "A learnt choice between the decodes"):
the onset logit alone does not tell which.  A :class:`DecodeSelector` scores each
refinement from what the aligner knows about it without the truth: its onset logit and
window probability and theirs relative to the note's other decodes, how far the refinement
moved its first decode, how many of the other decodes agree with it, how far it is from
the input, from the first stage's output and from where the note's neighbours say the
performance is, the note's velocity and the distance to its key's next or previous note.

The model is a small multilayer perceptron (numpy at inference: two hidden layers of 32),
trained by :func:`fit_selector` on the decodes of renders the CRNNs never heard, each
refinement labelled by whether it is within 25 ms of the note's attack
(``scripts/align_select.py``).  Files are ``.npz`` with a format tag, the feature names,
the standardisation and the weights; loading refuses anything else.
"""

from __future__ import annotations

import json
import os

import numpy as np

from pianossm.align.notes import Notes, key_gaps, local_shift
from pianossm.errors import PianoSSMError

__all__ = ["FEATURES", "SELECT_FORMAT", "DecodeSelector", "decode_features",
           "default_selector_path", "fit_selector", "load_selector"]

SELECT_FORMAT = "pianossm-align-select-1"
#: The features of one decode of one note, in the order :func:`decode_features` stacks them.
FEATURES = (
    "logit", "logit - best logit", "window probability", "window probability - best",
    "first decode's window probability", "moved by the refinement",
    "other refinements within 10 ms", "first decodes within 10 ms",
    "from the input", "from the first stage", "from the neighbours' shift",
    "refinements' spread", "input in time", "velocity", "key's nearest other note",
    "start 0", "start 1", "start 2", "mean logit over the refinements' rolls",
    "mean logit over the rolls - best", "lowest logit over the rolls - best",
    "rolls ranking it first",
)
#: Scale (s) of the time features (so that they are of order one).
_SCALE = 0.05
#: Distance (s) within which two decodes agree.
_AGREE = 0.01


def decode_features(onsets: np.ndarray, conf: np.ndarray, logit: np.ndarray,
                    first_onsets: np.ndarray, first_conf: np.ndarray, rough: Notes,
                    start: Notes, in_time: bool, pick: np.ndarray,
                    cross: np.ndarray | None = None) -> np.ndarray:
    """Features of each refined decode of each note for a :class:`DecodeSelector`.

    Parameters
    ----------
    onsets, conf, logit : np.ndarray
        ``(S, N)`` refined onsets (s), their window probabilities and onset logits.
    first_onsets, first_conf : np.ndarray
        ``(S, N)`` the first decodes (before refinement) and their window probabilities.
    rough, start : Notes
        ``N`` notes as given (the input) and after the first stage (the DTW's output).
    in_time : bool
        Whether the input was roughly in time (then the neighbours' shift is taken from
        it, else from the first stage's output, as the consensus step does).
    pick : np.ndarray
        ``(N,)`` the decode the onset logit picks (its onsets set the neighbours' shift).
    cross : np.ndarray, optional
        ``(S, S, N)``: ``cross[r, s]`` is the onset logit of refinement ``r``'s roll at
        refinement ``s``'s onsets (each refinement read a different input roll, so each
        judges the others' times too); default: each decode's own ``logit`` for every roll.

    Returns
    -------
    np.ndarray
        ``(S, N, len(FEATURES))`` float32.
    """
    s, n = onsets.shape
    if conf.shape != (s, n) or logit.shape != (s, n) or first_onsets.shape != (s, n) \
            or first_conf.shape != (s, n) or len(rough) != n or len(start) != n:
        raise PianoSSMError(f"decode_features: inconsistent shapes {onsets.shape}, "
                            f"{conf.shape}, {logit.shape}, {first_onsets.shape}, "
                            f"{first_conf.shape}, {len(rough)}, {len(start)} notes")
    cross = np.broadcast_to(logit[None], (s, s, n)) if cross is None else cross
    if cross.shape != (s, s, n):
        raise PianoSSMError(f"decode_features: cross logits of shape {cross.shape}, "
                            f"expected {(s, s, n)}")
    idx = np.arange(n)
    base = rough.onset if in_time else start.onset
    shift = local_shift(base, onsets[pick, idx], base, 9) if n else np.zeros(0)
    agree = (np.abs(onsets[:, None] - onsets[None]) <= _AGREE).sum(axis=1) - 1
    agree_first = (np.abs(onsets[:, None] - first_onsets[None]) <= _AGREE).sum(axis=1)
    gap = np.minimum(key_gaps(rough), 0.5)
    mean_cross, low_cross = cross.mean(axis=0), cross.min(axis=0)
    first_in = (cross == cross.max(axis=1, keepdims=True)).sum(axis=0)  # (S, N)
    which = np.zeros((3, s, n))
    for j in range(min(s, 3)):
        which[j, j] = 1.0
    cols = [
        logit, logit - logit.max(axis=0), conf, conf - conf.max(axis=0), first_conf,
        np.abs(onsets - first_onsets) / _SCALE, agree, agree_first,
        np.abs(onsets - rough.onset) / _SCALE, np.abs(onsets - start.onset) / _SCALE,
        np.abs(onsets - base - shift) / _SCALE,
        np.broadcast_to(np.ptp(onsets, axis=0) / _SCALE, (s, n)),
        np.full((s, n), float(in_time)), np.broadcast_to(rough.velocity / 127.0, (s, n)),
        np.broadcast_to(gap / 0.5, (s, n)), *which,
        mean_cross, mean_cross - mean_cross.max(axis=0), low_cross - low_cross.max(axis=0),
        first_in,
    ]
    return np.stack(cols, axis=-1).astype(np.float32)


class DecodeSelector:
    """A multilayer perceptron scoring decodes (see the module docstring).

    Parameters
    ----------
    mean, std : np.ndarray
        ``(F,)`` feature standardisation.
    weights : list of (np.ndarray, np.ndarray)
        ``(W, b)`` per layer; ReLU between layers, the last layer one output (a logit).
    info : dict
        Provenance (free text fields).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray,
                 weights: list[tuple[np.ndarray, np.ndarray]], info: dict | None = None,
                 ) -> None:
        if len(mean) != len(FEATURES) or len(std) != len(FEATURES):
            raise PianoSSMError(f"a decode selector needs {len(FEATURES)} features, got "
                                f"{len(mean)}")
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.weights = [(np.asarray(w, np.float64), np.asarray(b, np.float64))
                        for w, b in weights]
        self.info = dict(info or {})

    def logits(self, features: np.ndarray) -> np.ndarray:
        """``(..., F)`` features -> ``(...)`` unnormalised scores."""
        h = (features.astype(np.float64) - self.mean) / self.std
        for i, (w, b) in enumerate(self.weights):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[..., 0]

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``(S, N, F)`` features of ``S`` decodes of ``N`` notes -> ``(S, N)`` each
        decode's log-probability of being the note's choice (a softmax over its decodes,
        as :func:`fit_selector` trains it)."""
        z = self.logits(features)
        return z - np.logaddexp.reduce(z, axis=0)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the selector atomically as ``.npz``."""
        from pianossm.checkpoint import atomic_write

        arrays = {"mean": self.mean, "std": self.std}
        for i, (w, b) in enumerate(self.weights):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        meta = json.dumps({"format": SELECT_FORMAT, "features": list(FEATURES),
                           "layers": len(self.weights), "info": self.info})

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(meta), **arrays)

        atomic_write(os.fspath(path), write)


def load_selector(path: str | os.PathLike[str]) -> DecodeSelector:
    """Read a :class:`DecodeSelector` written by :meth:`DecodeSelector.save`.

    Raises
    ------
    PianoSSMError
        The file is missing, not a selector, or for other features.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PianoSSMError(f"decode selector not found: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError) as e:
        raise PianoSSMError(f"not a decode selector file: {path!r} ({e})") from None
    if meta.get("format") != SELECT_FORMAT:
        raise PianoSSMError(f"not a decode selector file: {path!r} (format "
                            f"{meta.get('format')!r}, expected {SELECT_FORMAT!r})")
    if meta.get("features") != list(FEATURES):
        raise PianoSSMError(f"the decode selector {path!r} was trained on other features: "
                            f"{meta.get('features')}")
    weights = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(int(meta["layers"]))]
    return DecodeSelector(arrays["mean"], arrays["std"], weights, meta.get("info"))


def default_selector_path() -> str:
    """Path of the shipped selector (``pianossm/assets/align_select.npz``)."""
    from pianossm.align.model import _asset  # where the shipped networks' paths come from

    return _asset("align_select.npz")


def fit_selector(x: np.ndarray, y: np.ndarray, group: np.ndarray, hidden: int = 32,
                 epochs: int = 60, lr: float = 3e-3, seed: int = 0,
                 info: dict | None = None) -> DecodeSelector:
    """Train a :class:`DecodeSelector` on labelled decodes.

    Parameters
    ----------
    x : np.ndarray
        ``(M, F)`` features of ``M`` decodes (:func:`decode_features`, flattened).
    y : np.ndarray
        ``(M,)`` 1 where the decode is within 25 ms of the note's attack, else 0.
    group : np.ndarray
        ``(M,)`` note index of each decode: the loss is a softmax over each note's
        decodes towards those within 25 ms (notes with none, or all, within 25 ms carry
        no choice and are left out), so the scores rank a note's decodes.
    hidden : int
        Units of each of the two hidden layers.
    epochs, lr, seed : int, float, int
        Adam over full-batch epochs; the seed of the initialisation.
    info : dict, optional
        Provenance stored with the selector.

    Returns
    -------
    DecodeSelector
    """
    import torch

    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(y) != len(x) or len(group) != len(x):
        raise PianoSSMError(f"fit_selector: expected (M, {len(FEATURES)}) features and (M,) "
                            f"labels and groups, got {x.shape}, {y.shape}, {group.shape}")
    _, inv = np.unique(group, return_inverse=True)
    pos = np.bincount(inv, weights=y)
    cnt = np.bincount(inv)
    keep = ((pos > 0) & (pos < cnt))[inv]
    x, y, inv = x[keep], y[keep], np.unique(inv[keep], return_inverse=True)[1]
    if not len(x):
        raise PianoSSMError("fit_selector: no note with a choice between its decodes")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    torch.manual_seed(seed)
    f = x.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(f, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 1))
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    gt = torch.from_numpy(inv.astype(np.int64))
    n_groups = int(inv.max()) + 1
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    n_batches = max(1, n_groups // 2000)  # of about 2000 notes each
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(n_groups + 1))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for b in np.array_split(rng.permutation(n_groups), n_batches):
            rows = np.concatenate([order[starts[g]:starts[g + 1]] for g in b])
            z = net(xt[rows])[:, 0]
            g = gt[rows]
            # per note: -log(sum of softmax over its decodes that are within 25 ms)
            _, gi = torch.unique(g, return_inverse=True)
            m = int(gi.max()) + 1
            lse_all = torch.full((m,), -torch.inf).scatter_reduce(
                0, gi, z, "amax")
            ez = torch.exp(z - lse_all[gi])
            tot = torch.zeros(m).index_add(0, gi, ez)
            good = torch.zeros(m).index_add(0, gi, ez * yt[rows])
            loss = (torch.log(tot) - torch.log(good + 1e-12)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    weights = [(layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy())
               for layer in net if isinstance(layer, torch.nn.Linear)]
    return DecodeSelector(mean, std, weights, info)
