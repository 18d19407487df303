"""The alignment CRNN (Murgul et al. 2025): unaligned roll + CQT -> aligned onsets/frames.

Input ``(B, 3, T, 88)``: the log CQT (bin k = key k), the onset and the frame channel of
the unaligned piano roll (``CRNNConfig(velocity=True)``: ``(B, 4, T, 88)``, a fourth
channel holding each note's MIDI velocity / 127 while its key is held,
:func:`pianossm.align.notes.velocity_roll`, so the network can know which notes to expect
soft; measured, not shipped: README, "Velocity input").  Two convolutional blocks over
(time, key) let every key see its own and neighbouring CQT bins and roll entries within
+-80 ms (4 convolutions of 5 frames); a dense projection and
one bidirectional GRU block give each frame the context of the whole window; a linear
head predicts the aligned onset and frame logits ``(B, 2, T, 88)``.  With
``CRNNConfig(local_head=True)`` a convolution from the last block's feature map adds to
those logits key by key (the dense projection squeezes all 88 keys' features into
``proj`` numbers before the GRU, so a soft attack seen by the convolutions of one key has
no path of its own to that key's output otherwise); ``local_harmonics=n`` lets that path
also read the features of the keys of the note's 2nd to (n+1)th harmonics (a harmonic
stack, as the harmonic CQT of Bittner et al. 2017: the convolutions see only +-4 keys,
while a soft attack may show more in its upper partials than at its fundamental).
``CRNNConfig(key_context=n)`` adds a per-key temporal path: ``n`` residual convolutions
along time only, dilations 2, 4, 8, ... frames, shared by all keys, from each key's
features and input to its logits (so each key sees its own bin's rise and decay over
+-``2 ** (n + 1) - 2`` frames, not only the blocks' +-40 ms; zero output at first).

Checkpoints are versioned dicts ``{"format": "pianossm-align-crnn", "version": 1,
"config": {...}, "model": state_dict(float16), ...}``; loading refuses anything else.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, replace
from importlib import resources
from typing import Any

import torch
from torch import nn

from pianossm.align.notes import N_KEYS
from pianossm.errors import PianoSSMError

__all__ = [
    "FORMAT",
    "VERSION",
    "AlignCRNN",
    "CRNNConfig",
    "default_crnn_path",
    "default_crnn_paths",
    "default_half_path",
    "default_refine_path",
    "fold_batchnorm",
    "harmonic_offsets",
    "load_crnn",
    "save_crnn",
    "with_key_context",
    "with_local_head",
    "with_plain_cqt",
    "with_velocity",
]

#: Most harmonics the per-key path may read (the 17th is 49 keys up: within the keyboard
#: for the lower 39 keys).
MAX_HARMONICS = 16
#: Most dilated convolutions of the per-key temporal path (dilation 128: +-2.5 s of context).
MAX_KEY_CONTEXT = 7
FORMAT = "pianossm-align-crnn"
VERSION = 1


@dataclass(frozen=True)
class CRNNConfig:
    """Sizes of :class:`AlignCRNN`."""

    channels: int = 12
    kernel_time: int = 5
    hidden: int = 128
    proj: int = 192
    dropout: float = 0.1
    #: a per-key path from the convolutions to the logits (zero at initialisation, so a
    #: network widened from a checkpoint without it starts out computing the same)
    local_head: bool = False
    #: with ``local_head``: harmonics above the fundamental whose keys' features the
    #: per-key path also reads (their own zero-initialised weights)
    local_harmonics: int = 0
    #: a fourth input channel, the notes' velocities (:func:`with_velocity` widens a
    #: network without it, its weights zero at first)
    velocity: bool = False
    #: one more input channel after those, the CQT of the recording itself when the first
    #: is that of its WPE prediction error (:func:`with_plain_cqt` widens a network without
    #: it, its weights zero at first): the sustain that WPE removes tells which keys sound
    plain_cqt: bool = False
    #: a per-key temporal path: this many dilated convolutions along time only (dilations
    #: 2, 4, 8, ... frames), shared by all keys, from the last block's features and the
    #: input of each key to its logits (:func:`with_key_context` widens a network without
    #: it, its output zero at first)
    key_context: int = 0
    #: channels of that path
    key_channels: int = 8

    @property
    def in_channels(self) -> int:
        """Input channels: CQT, onsets, frames (and velocities, and the plain CQT)."""
        return 3 + int(self.velocity) + int(self.plain_cqt)

    @property
    def key_dilations(self) -> list[int]:
        """Dilations (frames) of the per-key temporal path's convolutions."""
        return [2 ** (i + 1) for i in range(self.key_context)]

    def __post_init__(self) -> None:
        if not 0 <= self.local_harmonics <= MAX_HARMONICS:
            raise PianoSSMError(f"local_harmonics must be 0 to {MAX_HARMONICS}, got "
                                f"{self.local_harmonics!r}")
        if not 0 <= self.key_context <= MAX_KEY_CONTEXT:
            raise PianoSSMError(f"key_context must be 0 to {MAX_KEY_CONTEXT}, got "
                                f"{self.key_context!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CRNNConfig:
        """Rebuild from :func:`dataclasses.asdict` output; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise PianoSSMError(f"unknown CRNN config keys {sorted(unknown)}")
        return cls(**d)


def _conv_block(c_in: int, c_out: int, kt: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, (kt, 3), padding=(kt // 2, 1)), nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, (kt, 3), padding=(kt // 2, 1)), nn.BatchNorm2d(c_out),
        nn.ReLU())


class AlignCRNN(nn.Module):
    """Two conv blocks, a BiGRU block and a per-key onset/frame head.

    Parameters
    ----------
    config : CRNNConfig
        Sizes.
    """

    def __init__(self, config: CRNNConfig = CRNNConfig()) -> None:
        super().__init__()
        c = config.channels
        self.config = config
        n_in = config.in_channels
        self.block1 = _conv_block(n_in, c, config.kernel_time)
        self.block2 = _conv_block(c, c, config.kernel_time)
        self.proj = nn.Sequential(nn.Linear((c + n_in) * N_KEYS, config.proj), nn.ReLU(),
                                  nn.Dropout(config.dropout))
        self.rnn = nn.GRU(config.proj, config.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * config.hidden + n_in * N_KEYS, 2 * N_KEYS)
        self.local: nn.Conv2d | None = None
        if config.local_head:
            kt = config.kernel_time
            self.local = nn.Conv2d(c, 2, (kt, 3), padding=(kt // 2, 1))
            nn.init.zeros_(self.local.weight)
            nn.init.zeros_(self.local.bias)
        self.harm: nn.Conv2d | None = None
        if config.local_head and config.local_harmonics > 0:
            kt = config.kernel_time
            self.harm = nn.Conv2d(c * config.local_harmonics, 2, (kt, 3),
                                  padding=(kt // 2, 1), bias=False)
            nn.init.zeros_(self.harm.weight)
        self.key_in: nn.Conv2d | None = None
        self.key_convs = nn.ModuleList()
        self.key_out: nn.Conv2d | None = None
        if config.key_context > 0:
            kc = config.key_channels
            self.key_in = nn.Conv2d(c + n_in, kc, 1)
            self.key_convs.extend(nn.Conv2d(kc, kc, (3, 1), padding=(d, 0), dilation=(d, 1))
                                  for d in config.key_dilations)
            self.key_out = nn.Conv2d(kc, 2, 1)
            nn.init.zeros_(self.key_out.weight)
            nn.init.zeros_(self.key_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, 88)`` input (``C_in = config.in_channels``) -> ``(B, 2, T, 88)``
        onset and frame logits."""
        f, local = self._features(x)
        h, _ = self.rnn(f)  # (B, T, 2H)
        return self._head(h, x, local)

    def forward_windows(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for a batch of independent windows, faster on a CPU thread.

        The convolutions and projections run one window at a time (a batch of these
        feature maps no longer fits the caches: twice the time per window) and the BiGRU,
        which steps through time one frame at a time, runs on the whole batch (half the
        time per window at 8 windows).  Equal to :meth:`forward` up to rounding.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C_in, T, 88)`` windows.

        Returns
        -------
        torch.Tensor
            ``(B, 2, T, 88)`` onset and frame logits.
        """
        parts = [self._features(xi[None]) for xi in x.unbind(0)]
        h, _ = self.rnn(torch.cat([f for f, _ in parts]))
        local = torch.cat([lo for _, lo in parts]) if self.local is not None else None
        return self._head(h, x, local)

    def forward_spans(self, x: torch.Tensor, spans: list[tuple[int, int]],
                      chunk: int = 3000,
                      features: tuple[torch.Tensor, torch.Tensor | None] | None = None,
                      ) -> torch.Tensor:
        """Logits of several windows of one long input, its convolutions computed once.

        The convolutions, the per-key path and the projection see only a few frames
        around each frame (:attr:`halo`), so they run over the whole input in chunks of
        ``chunk`` frames (each with ``halo`` frames of context, which it then drops: the
        same features as one pass over the whole input); windows that overlap share them
        instead of computing them again.  The BiGRU and the head then run on the windows
        ``x[..., a:b, :]``, the windows of equal length as one batch.

        Parameters
        ----------
        x : torch.Tensor
            ``(1, C_in, T, 88)`` input.
        spans : list of (int, int)
            ``B`` windows ``(a, b)``, ``0 <= a < b <= T``, all of one length ``L``.
        chunk : int
            Frames per convolution chunk (about one window: a larger feature map no longer
            fits the caches).
        features : tuple, optional
            :meth:`sequence_features` of ``x``, when already computed (several batches of
            windows of one input).

        Returns
        -------
        torch.Tensor
            ``(B, 2, L, 88)`` logits; window ``i`` is ``forward(x[..., a:b, :])`` except
            that the features of its first and last ``halo`` frames see the input around
            the window rather than zero padding (the BiGRU carries that small difference
            into the rest of the window).
        """
        f, local = self.sequence_features(x, chunk) if features is None else features
        h, _ = self.rnn(torch.cat([f[:, a:b] for a, b in spans]))
        lo = torch.cat([local[:, :, a:b] for a, b in spans]) if local is not None else None
        return self._head(h, torch.cat([x[:, :, a:b] for a, b in spans]), lo)

    @property
    def halo(self) -> int:
        """Frames of context on each side that a frame's features read: the four
        convolutions of the two blocks and the per-key path's, ``kernel_time // 2`` each,
        or the blocks' and the per-key temporal path's dilations when that is more."""
        half = self.config.kernel_time // 2
        return max(5 * half, 4 * half + sum(self.config.key_dilations))

    def sequence_features(self, x: torch.Tensor, chunk: int = 3000,
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`_features` of a long input, computed in chunks (see :meth:`forward_spans`).

        Parameters
        ----------
        x : torch.Tensor
            ``(1, C_in, T, 88)`` input.
        chunk : int
            Frames per chunk.

        Returns
        -------
        f : torch.Tensor
            ``(1, T, proj)`` per-frame features.
        local : torch.Tensor or None
            ``(1, 2, T, 88)`` per-key logits (None without the per-key path).
        """
        t, pad = x.shape[2], self.halo
        fs, locs = [], []
        for a in range(0, t, chunk):
            lo, hi = max(0, a - pad), min(t, a + chunk + pad)
            f, local = self._features(x[:, :, lo:hi])
            b = min(t, a + chunk)
            fs.append(f[:, a - lo:b - lo])
            if local is not None:
                locs.append(local[:, :, a - lo:b - lo])
        return torch.cat(fs, dim=1), (torch.cat(locs, dim=2) if locs else None)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, C_in, T, 88)`` input -> ``(B, T, proj)`` per-frame features for the BiGRU,
        and the per-key path's ``(B, 2, T, 88)`` logits (None without it)."""
        b, _, t, _ = x.shape
        h = self.block2(self.block1(x))  # (B, C, T, 88)
        local = self._local_logits(h) if self.local is not None else None
        hx = torch.cat([h, x], dim=1)  # (B, C + C_in, T, 88)
        if self.key_out is not None:
            key = self._key_logits(hx)
            local = key if local is None else local + key
        h = hx.permute(0, 2, 1, 3).reshape(b, t, -1)  # (B, T, (C+C_in)*88)
        return self.proj(h), local

    def _local_logits(self, h: torch.Tensor) -> torch.Tensor:
        """The per-key path: ``(B, C, T, 88)`` features -> ``(B, 2, T, 88)`` logits.

        Equal to ``local(h) + harm(_harmonic_stack(h, n))`` (the definition, kept in the
        tests) but about six times faster on a CPU thread: a convolution with 2 outputs
        is slow for its work, so one convolution of ``h`` gives all ``2 (n + 1)`` outputs
        and each harmonic's pair is shifted down by its offset; at key 0 the stacked input
        has zero padding where ``h`` has a key, whose term is taken off again.
        """
        if self.harm is None:
            return self.local(h)
        n, c = self.config.local_harmonics, h.shape[1]
        kt, k = self.harm.weight.shape[2], h.shape[3]
        # (2, n * C, kt, 3) -> (n * 2, C, kt, 3): harmonic i's two outputs
        wh = self.harm.weight.reshape(2, n, c, kt, 3).transpose(0, 1).reshape(2 * n, c, kt, 3)
        y = nn.functional.conv2d(
            nn.functional.pad(h, (0, 1)), torch.cat([self.local.weight, wh]),
            torch.cat([self.local.bias, self.local.bias.new_zeros(2 * n)]),
            padding=(kt // 2, 1))  # (B, 2 (n + 1), T, 89)
        out = y[:, :2, :, :k]
        for i, o in enumerate(harmonic_offsets(n)):
            w = wh[2 * i:2 * i + 2]
            edge = nn.functional.conv2d(h[..., o - 1:o], w[..., :1], padding=(kt // 2, 0))
            yi = torch.cat([y[:, 2 + 2 * i:4 + 2 * i, :, o:o + 1] - edge,
                            y[:, 2 + 2 * i:4 + 2 * i, :, o + 1:]], dim=-1)
            out = out + nn.functional.pad(yi, (0, k - yi.shape[-1]))
        return out

    def _key_logits(self, hx: torch.Tensor) -> torch.Tensor:
        """The per-key temporal path: features and input stacked, ``(B, C + C_in, T, 88)``
        -> ``(B, 2, T, 88)`` logits.  Each key reads only its own column, through
        residual convolutions along time whose dilations double (2, 4, 8, ... frames), so
        it sees how its own bin rose and decayed +-``sum(dilations)`` frames around (a
        re-strike of a ringing key shows against that key's decay, further back than the
        blocks' +-40 ms)."""
        z = torch.relu(self.key_in(hx))
        for conv in self.key_convs:
            z = z + torch.relu(conv(z))
        return self.key_out(z)

    def _head(self, h: torch.Tensor, x: torch.Tensor,
              local: torch.Tensor | None = None) -> torch.Tensor:
        """BiGRU output ``(B, T, 2H)``, input ``(B, C_in, T, 88)`` and the per-key path's
        logits ``(B, 2, T, 88)`` (or None) -> ``(B, 2, T, 88)``."""
        b, _, t, k = x.shape
        skip = x.permute(0, 2, 1, 3).reshape(b, t, -1)  # (B, T, C_in*88)
        out = self.head(torch.cat([h, skip], dim=-1))  # (B, T, 2*88)
        out = out.reshape(b, t, 2, k).permute(0, 2, 1, 3)
        return out if local is None else out + local


def harmonic_offsets(n: int) -> list[int]:
    """Key offsets of harmonics 2 to ``n + 1`` above a fundamental (12, 19, 24, 28, ...).

    Parameters
    ----------
    n : int
        Harmonics above the fundamental.

    Returns
    -------
    list of int
        ``n`` offsets in keys (equal-tempered, rounded).
    """
    return [round(12 * math.log2(h)) for h in range(2, n + 2)]


def _harmonic_stack(h: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, C, T, 88)`` features -> ``(B, n * C, T, 88)``: at key ``k``, the features of
    key ``k + offset`` for each of :func:`harmonic_offsets` (zero above the top key)."""
    return torch.cat([nn.functional.pad(h[..., o:], (0, o)) for o in harmonic_offsets(n)],
                     dim=1)


def with_local_head(model: AlignCRNN, harmonics: int = 0) -> AlignCRNN:
    """The same network with a (zero) per-key path added: computes exactly what ``model``
    computes until trained (:attr:`CRNNConfig.local_head`).

    Parameters
    ----------
    model : AlignCRNN
        A network with or without the path (returned unchanged when it has one reading
        at least ``harmonics`` harmonics).
    harmonics : int
        Harmonics the path reads (:attr:`CRNNConfig.local_harmonics`); a path that reads
        fewer keeps its weights and gets zero ones for the added harmonics.

    Returns
    -------
    AlignCRNN
        In ``model``'s mode (train or eval).
    """
    have = model.config.local_harmonics if model.config.local_head else -1
    if have >= harmonics:
        return model
    wide = AlignCRNN(replace(model.config, local_head=True, local_harmonics=harmonics))
    state = model.state_dict()
    if have > 0:  # the added harmonics' input channels come after the old ones
        weight = wide.harm.weight.detach().clone()
        weight[:, :state["harm.weight"].shape[1]] = state["harm.weight"]
        state["harm.weight"] = weight
    missing, unexpected = wide.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(("local.", "harm.")) for k in missing):
        raise PianoSSMError(f"cannot widen the CRNN: missing {missing}, unexpected {unexpected}")
    return wide.train(model.training)


def with_key_context(model: AlignCRNN, layers: int, channels: int = 8) -> AlignCRNN:
    """The same network with a per-key temporal path (:attr:`CRNNConfig.key_context`)
    whose output convolution is zero: computes exactly what ``model`` computes until
    trained.

    Parameters
    ----------
    model : AlignCRNN
        A network without the path (returned unchanged when it has one).
    layers : int
        Dilated convolutions of the path (1 to :data:`MAX_KEY_CONTEXT`).
    channels : int
        Their channels.

    Returns
    -------
    AlignCRNN
        In ``model``'s mode (train or eval).
    """
    if model.config.key_context > 0:
        return model
    with torch.random.fork_rng():  # the path's inner weights: the same every time
        torch.manual_seed(0)
        wide = AlignCRNN(replace(model.config, key_context=layers, key_channels=channels))
    missing, unexpected = wide.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(("key_in.", "key_convs.", "key_out."))
                         for k in missing):
        raise PianoSSMError(f"cannot widen the CRNN: missing {missing}, unexpected {unexpected}")
    return wide.train(model.training)


def _with_input_channel(model: AlignCRNN, **change: bool) -> AlignCRNN:
    """``model`` with one more input channel last (``change``: the config field that adds
    it), whose weights are zero."""
    wide = AlignCRNN(replace(model.config, **change))
    state = dict(model.state_dict())
    # the input channels come last in the first convolution, in the projection's and in
    # the head's skip input (channel-major: the new channel's 88 keys at the end)
    w = state["block1.0.weight"]  # (C, C_in, kt, 3)
    state["block1.0.weight"] = torch.cat([w, w.new_zeros(w[:, :1].shape)], dim=1)
    for name in ("proj.0.weight", "head.weight"):
        w = state[name]
        state[name] = torch.cat([w, w.new_zeros(w.shape[0], N_KEYS)], dim=1)
    if "key_in.weight" in state:  # the per-key temporal path reads (features, input)
        w = state["key_in.weight"]  # (kc, C + C_in, 1, 1)
        state["key_in.weight"] = torch.cat([w, w.new_zeros(w[:, :1].shape)], dim=1)
    wide.load_state_dict(state)
    return wide.train(model.training)


def with_velocity(model: AlignCRNN) -> AlignCRNN:
    """The same network with a fourth input channel, the notes' velocities
    (:attr:`CRNNConfig.velocity`), whose weights are zero: computes exactly what ``model``
    computes until trained.

    Parameters
    ----------
    model : AlignCRNN
        A network with or without the channel (returned unchanged when it has one).

    Returns
    -------
    AlignCRNN
        In ``model``'s mode (train or eval); reads ``(B, 4, T, 88)`` input.
    """
    if model.config.velocity:
        return model
    if model.config.plain_cqt:  # the plain CQT's channel would have to move
        raise PianoSSMError("cannot add the velocity channel to a CRNN that reads the "
                            "plain CQT")
    return _with_input_channel(model, velocity=True)


def with_plain_cqt(model: AlignCRNN) -> AlignCRNN:
    """The same network with one more input channel, the CQT of the recording itself
    (:attr:`CRNNConfig.plain_cqt`), whose weights are zero: computes exactly what
    ``model`` computes until trained.

    Parameters
    ----------
    model : AlignCRNN
        A network with or without the channel (returned unchanged when it has one).

    Returns
    -------
    AlignCRNN
        In ``model``'s mode (train or eval); reads ``(B, C_in + 1, T, 88)`` input.
    """
    if model.config.plain_cqt:
        return model
    return _with_input_channel(model, plain_cqt=True)


def fold_batchnorm(model: AlignCRNN) -> AlignCRNN:
    """An inference copy of ``model`` whose batch norms are folded into the convolutions
    before them (one pass over each feature map fewer; the same logits up to rounding).

    Parameters
    ----------
    model : AlignCRNN
        A network (its batch-norm statistics are used as in eval mode).

    Returns
    -------
    AlignCRNN
        A new network in eval mode, each ``BatchNorm2d`` an ``Identity``; not for training.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(model).eval()
    for block in (out.block1, out.block2):
        for i in (0, 3):  # Conv2d, BatchNorm2d, ReLU, Conv2d, BatchNorm2d, ReLU
            block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
            block[i + 1] = nn.Identity()
    return out


def save_crnn(path: str | os.PathLike[str], model: AlignCRNN, **extra: Any) -> None:
    """Write a versioned checkpoint atomically (weights in float16 unless ``extra`` holds
    training state, which keeps float32)."""
    from pianossm.checkpoint import atomic_write

    half = "optimizer" not in extra
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu()
             for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": asdict(model.config),
               "model": state, **extra}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_crnn(path: str | os.PathLike[str] | None = None,
              ) -> tuple[AlignCRNN, dict[str, Any]]:
    """Load a CRNN checkpoint (default: the shipped ``align_crnn.pt``) in eval mode.

    Returns
    -------
    model : AlignCRNN
        float32, eval mode.
    payload : dict
        The whole checkpoint (training state, recipe).
    """
    path = os.fspath(path) if path is not None else default_crnn_path()
    if not os.path.isfile(path):
        raise PianoSSMError(f"alignment checkpoint not found: {path!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a corrupt file
        raise PianoSSMError(f"not a readable checkpoint: {path!r} ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PianoSSMError(f"{path!r} is not an alignment CRNN checkpoint")
    if payload.get("version") != VERSION:
        raise PianoSSMError(f"{path!r} has checkpoint version {payload.get('version')!r}; "
                            f"this pianossm reads version {VERSION}")
    model = AlignCRNN(CRNNConfig.from_dict(payload["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in payload["model"].items()})
    return model.eval(), payload


def _asset(name: str) -> str:
    """Path of the shipped file ``pianossm/assets/<name>``."""
    return os.fspath(resources.files("pianossm") / "assets" / name)


def default_crnn_path() -> str:
    """Path of the shipped checkpoint ``pianossm/assets/align_crnn.pt``."""
    return _asset("align_crnn.pt")


def default_crnn_paths() -> tuple[str, ...]:
    """The checkpoints :func:`pianossm.align.api.align_notes` uses by default for the first
    decodes (their aligned onsets averaged when several; the refinement and half-frame
    passes: :func:`default_refine_path`, :func:`default_half_path`): now one,
    ``align_crnn.pt`` (stage 40, step 925: stage
    34, the weight average of stages 31 and 33, which reads the recording's own CQT beside
    the WPE one, fine-tuned for longer on renders labelled at the sound as stage 36,
    continued on a longer schedule as stage 38, whose soup of three checkpoints was
    fine-tuned on twice the training renders; README "Stages 40 and 41"; a pair shipped
    until it aligned from several starts, README "Several starts")."""
    return (default_crnn_path(),)


def default_refine_path() -> str:
    """Path of the shipped network ``pianossm/assets/align_crnn_refine.pt``, which
    :func:`pianossm.align.api.align_notes` uses by default for the refinement passes
    (+-60 ms around the first network's decodes; README, "Other networks for the
    refinements")."""
    return _asset("align_crnn_refine.pt")


def default_half_path() -> str:
    """Path of the shipped network ``pianossm/assets/align_crnn_half.pt``, which
    :func:`pianossm.align.api.align_notes` uses by default for the half-frame pass."""
    return _asset("align_crnn_half.pt")
