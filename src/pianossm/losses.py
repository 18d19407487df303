"""Training losses and the evaluation metric: MSSL (DDSP) and SMML (Piano-SSM).

Both are ``nn.Module(input, target)`` returning a dict of named parts with ``"loss"``
their sum.  ``input`` and ``target`` are ``(B, T)`` or ``(T,)`` audio at the rate the
module was built for.

MSSL is DDSP's ``SpectralLoss`` with ``mag_weight = logmag_weight = 1``: per FFT size a
``tf.signal.stft`` (periodic Hann, 75 % overlap, no centring, ``pad_end=True``), then
``mean|S_x - S_y| + mean|log S_x - log S_y|`` with DDSP's ``safe_log`` (values <= 1e-5
become 1e-5), summed over sizes.  We frame by hand (zero-pad the end, then
``torch.stft(center=False)``) because ``torch.stft`` has no ``pad_end``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["DDSP_FFT_SIZES", "ENV_FLOOR", "LOG_EPS", "MSSL", "SMML", "AttackLoss",
           "EnvelopeLoss", "FluxLoss", "PitchLoss", "attack_gate", "key_filters",
           "log_envelope", "log_mel_flux", "mssl_fft_sizes", "stft_mag"]

#: FFT sizes of the MSSL at 16 kHz; other rates scale them by ``sample_rate / 16000``.
DDSP_FFT_SIZES: tuple[int, ...] = (4096, 2048, 1024, 512, 256, 128, 64)
#: DDSP's ``safe_log`` floor.
LOG_EPS = 1e-5
#: Floor of :func:`log_envelope` (RMS, -80 dBFS): quieter frames count as this level.
ENV_FLOOR = 1e-4


def mssl_fft_sizes(sample_rate: int, base: tuple[int, ...] = DDSP_FFT_SIZES) -> tuple[int, ...]:
    """FFT sizes at ``sample_rate``: the 16 kHz sizes scaled by ``sample_rate / 16000``.

    Sizes are rounded to a multiple of 4 so that the 75 % overlap hop is exact.
    """
    return tuple(max(4, 4 * round(n * sample_rate / 16000 / 4)) for n in base)


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    """``(T,)`` or ``(B, T)`` to ``(B, T)``."""
    return x[None] if x.dim() == 1 else x


def stft_mag(audio: torch.Tensor, n_fft: int, hop: int, win_length: int | None = None,
             window: torch.Tensor | None = None) -> torch.Tensor:
    """Magnitude STFT with ``tf.signal.stft`` framing: no centring, zero-padded end.

    Parameters
    ----------
    audio : torch.Tensor
        ``(B, T)`` real audio.
    n_fft, hop : int
        FFT size and hop in samples.
    win_length : int, optional
        Window length (``<= n_fft``, centred in the frame as ``torch.stft`` does);
        ``n_fft`` when omitted.
    window : torch.Tensor, optional
        ``(win_length,)`` window; periodic Hann when omitted.

    Returns
    -------
    torch.Tensor
        ``(B, n_fft // 2 + 1, ceil(T / hop))`` magnitudes.
    """
    win_length = win_length or n_fft
    if window is None:
        window = torch.hann_window(win_length, dtype=audio.dtype, device=audio.device)
    t_len = audio.shape[-1]
    n_frames = max(1, -(-t_len // hop))
    pad = (n_frames - 1) * hop + n_fft - t_len
    audio = torch.nn.functional.pad(audio, (0, pad))
    spec = torch.stft(audio, n_fft, hop, win_length, window.to(audio.dtype), center=False,
                      return_complex=True)
    return spec.abs()


def _safe_log(x: torch.Tensor) -> torch.Tensor:
    """DDSP's ``safe_log``: ``log(x)`` with values <= 1e-5 replaced by 1e-5."""
    return torch.log(torch.where(x <= LOG_EPS, torch.full_like(x, LOG_EPS), x))


def _mel_setup(sample_rate: int, win: int, n_mels: int, fmin: float,
               ) -> tuple[int, torch.Tensor, torch.Tensor]:
    """FFT size, mel filterbank and window of a ``win``-sample Hann mel spectrogram.

    Returns
    -------
    n_fft : int
        The next power of two ``>= win``.
    basis : torch.Tensor
        ``(n_mels, n_fft // 2 + 1)`` float32 librosa mel filters, ``fmin`` to Nyquist.
    window : torch.Tensor
        ``(win,)`` periodic Hann window.
    """
    import librosa

    n_fft = 1 << math.ceil(math.log2(win))
    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                             fmax=sample_rate / 2)
    return n_fft, torch.from_numpy(fb).float(), torch.hann_window(win)


def _mel_mag(x: torch.Tensor, basis: torch.Tensor, n_fft: int, hop: int, win: int,
             window: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` audio to ``(B, n_mels, ceil(T / hop))`` mel magnitudes (see :func:`stft_mag`)."""
    mag = stft_mag(x, n_fft, hop, win, window)
    return torch.matmul(basis.to(mag.dtype), mag)


class MSSL(nn.Module):
    """Multi-scale spectral loss exactly as DDSP defines it.

    Parameters
    ----------
    sample_rate : int
        Audio rate; the 16 kHz FFT sizes are scaled by ``sample_rate / 16000``.
    fft_sizes : tuple of int, optional
        Explicit FFT sizes (overrides the scaling).
    mag_weight, logmag_weight : float
        Weights of the linear and log-magnitude L1 terms.
    """

    def __init__(self, sample_rate: int = 16000, fft_sizes: tuple[int, ...] | None = None,
                 mag_weight: float = 1.0, logmag_weight: float = 1.0) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.fft_sizes = tuple(fft_sizes) if fft_sizes else mssl_fft_sizes(sample_rate)
        self.mag_weight, self.logmag_weight = mag_weight, logmag_weight

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target``, both ``(B, T)`` or ``(T,)``.

        Returns
        -------
        dict
            ``loss`` (scalar), plus ``mag`` and ``logmag`` summed over sizes and
            ``mssl_<n_fft>`` per size.
        """
        x, y = _as_batch(input), _as_batch(target)
        out: dict[str, torch.Tensor] = {}
        mag_total = x.new_zeros(())
        log_total = x.new_zeros(())
        for n in self.fft_sizes:
            sx = stft_mag(x, n, n // 4)
            sy = stft_mag(y, n, n // 4)
            mag = (sx - sy).abs().mean()
            logmag = (_safe_log(sx) - _safe_log(sy)).abs().mean()
            out[f"mssl_{n}"] = (self.mag_weight * mag + self.logmag_weight * logmag).detach()
            mag_total = mag_total + mag
            log_total = log_total + logmag
        out["mag"] = mag_total
        out["logmag"] = log_total
        out["loss"] = self.mag_weight * mag_total + self.logmag_weight * log_total
        return out


class SMML(nn.Module):
    """Piano-SSM's training loss: STFT + Mel-STFT + mean loss.

    * ``stft``: L1 of magnitudes, FFT size = 1 s window = ``sample_rate``, 100 ms hop.
    * ``mel_sc`` + ``mel_log``: on a mel spectrogram with a ~46.4 ms window and ~5.8 ms
      hop at every rate (1024 / 128 samples at 22.05 kHz, scaled by the rate), spectral
      convergence ``||Y - X||_F / ||Y||_F`` (over the batch) and L1 of log magnitudes.
    * ``mean``: ``(mean(x) - mean(y))**2`` per item, averaged: never negative.

    The mel filterbank (librosa) is built once here and kept as a buffer.

    Parameters
    ----------
    sample_rate : int
        Audio rate in Hz.
    n_mels : int
        Mel bands.
    weights : dict, optional
        Weights of ``stft``, ``mel``, ``mean`` (each 1 by default).
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 80,
                 weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.weights = {"stft": 1.0, "mel": 1.0, "mean": 1.0, **(weights or {})}
        self.stft_fft = int(sample_rate)
        self.stft_hop = round(0.1 * sample_rate)
        self.mel_win = round(1024 * sample_rate / 22050)
        self.mel_hop = max(1, round(128 * sample_rate / 22050))
        self.mel_fft, basis, window = _mel_setup(sample_rate, self.mel_win, n_mels, 0.0)
        self.register_buffer("mel_basis", basis, persistent=False)
        self.register_buffer("mel_window", window, persistent=False)

    def _mel(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` audio to ``(B, n_mels, frames)`` mel magnitudes."""
        return _mel_mag(x, self.mel_basis, self.mel_fft, self.mel_hop, self.mel_win,
                        self.mel_window)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target``, both ``(B, T)`` or ``(T,)``.

        Returns
        -------
        dict
            ``loss`` and its parts ``stft``, ``mel_sc``, ``mel_log``, ``mean``.
        """
        x, y = _as_batch(input), _as_batch(target)
        w = self.weights
        stft = (stft_mag(x, self.stft_fft, self.stft_hop)
                - stft_mag(y, self.stft_fft, self.stft_hop)).abs().mean()
        mx, my = self._mel(x), self._mel(y)
        # Spectral convergence over the whole batch, as Parallel WaveGAN defines it (per
        # item it explodes on a silent crop); silent input and target give 0/eps = 0.
        sc = (torch.linalg.vector_norm(my - mx)
              / torch.linalg.vector_norm(my).clamp_min(LOG_EPS))
        mel_log = (torch.log(mx.clamp_min(LOG_EPS)) - torch.log(my.clamp_min(LOG_EPS))).abs().mean()
        mean = ((x.mean(dim=-1) - y.mean(dim=-1)) ** 2).mean()
        loss = w["stft"] * stft + w["mel"] * (sc + mel_log) + w["mean"] * mean
        return {"loss": loss, "stft": stft, "mel_sc": sc, "mel_log": mel_log, "mean": mean}


def log_envelope(audio: torch.Tensor, frame: int, hop: int, floor: float = ENV_FLOOR,
                 ) -> torch.Tensor:
    """Natural log of the short-time RMS, ``log(max(rms, floor))``.

    Parameters
    ----------
    audio : torch.Tensor
        ``(B, T)`` real audio.
    frame, hop : int
        Frame length and hop in samples; the end is zero-padded to whole frames
        (``tf.signal.frame`` with ``pad_end``, as :func:`stft_mag`).
    floor : float
        RMS floor.

    Returns
    -------
    torch.Tensor
        ``(B, ceil(T / hop))`` log RMS.
    """
    t_len = audio.shape[-1]
    n_frames = max(1, -(-t_len // hop))
    pad = (n_frames - 1) * hop + frame - t_len
    frames = torch.nn.functional.pad(audio, (0, pad)).unfold(-1, frame, hop)  # (B, N, frame)
    rms = frames.square().mean(dim=-1).clamp_min(floor * floor).sqrt()
    return torch.log(rms)


class EnvelopeLoss(nn.Module):
    """L1 distance of 2 ms log-RMS envelopes: charges onsets that rise late or slowly.

    The MSSL's spectra average over 4-256 ms frames and per frequency bin, so a note
    whose attack reaches half its peak 15 ms late costs it little; summed over the band
    and taken at 2 ms (1 ms hop), the level's log is off by ``log 2`` or more through
    the whole rise.  Not part of either paper: an extra term ``pianossm train
    --env-weight`` adds to the training loss (validation stays MSSL).

    Parameters
    ----------
    sample_rate : int
        Audio rate in Hz; frame ``round(0.002 sr)``, hop half of it.
    floor : float
        RMS floor of :func:`log_envelope`.
    """

    def __init__(self, sample_rate: int = 16000, floor: float = ENV_FLOOR) -> None:
        super().__init__()
        self.frame = max(2, round(0.002 * sample_rate))
        self.hop = max(1, self.frame // 2)
        self.floor = floor

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target``, both ``(B, T)`` or ``(T,)``.

        Returns
        -------
        dict
            ``loss``: mean ``|log_env(input) - log_env(target)|`` over batch and frames.
        """
        x, y = _as_batch(input), _as_batch(target)
        ex = log_envelope(x, self.frame, self.hop, self.floor)
        ey = log_envelope(y, self.frame, self.hop, self.floor)
        return {"loss": (ex - ey).abs().mean()}


def log_mel_flux(mel: torch.Tensor, floor: torch.Tensor, lag: int = 1) -> torch.Tensor:
    """Positive rise of log mel magnitudes over ``lag`` frames (spectral flux per band).

    Parameters
    ----------
    mel : torch.Tensor
        ``(B, M, N)`` mel magnitudes.
    floor : torch.Tensor
        ``(B, 1, 1)`` magnitude floor; quieter cells count as the floor, so that noise far
        below the music does not make flux.
    lag : int
        Frames between the compared cells.

    Returns
    -------
    torch.Tensor
        ``(B, M, N - lag)`` ``max(0, log m[t] - log m[t - lag])``.
    """
    log_m = torch.log(torch.maximum(mel, floor))
    return torch.relu(log_m[..., lag:] - log_m[..., :-lag])


class FluxLoss(nn.Module):
    """L1 distance of per-band spectral flux: charges each note's attack in its own band.

    The MSSL averages over 4-256 ms frames, and :class:`EnvelopeLoss` sums the whole band,
    so in a chord, or beside a louder note, a note whose attack rises slowly (or merges
    with its neighbour's) costs little in either; an onset detector (and the aligner that
    times the synthesiser) sees exactly that.  Here a 32 ms Hann window with a 2 ms hop
    feeds 24 mel bands (librosa, 30 Hz to Nyquist, about a third of an octave each); each
    band's log magnitude (floored 50 dB under the target's loudest cell, per item, as
    librosa's ``onset_strength`` floors its dB scale) gives its rise over 8 ms, and the
    loss is the mean ``|flux(input) - flux(target)|``.  Those sizes were chosen on
    eight 2 s training crops so that the loss grows with a time shift of the target (2 / 5 /
    10 / 20 ms: 0.017 / 0.038 / 0.058 / 0.063) rather than with the beating of partials,
    which a 1-frame flux on 64 bands (16 ms window) measures instead (there a 5 ms shift
    cost more than a 20 ms one).  Not part of either paper: ``pianossm
    train --flux-weight`` adds it to the training loss (validation stays MSSL).

    Parameters
    ----------
    sample_rate : int
        Audio rate in Hz; window ``round(0.032 sr)``, hop ``round(0.002 sr)``.
    n_mels : int
        Mel bands.
    lag_seconds : float
        Time over which a band's rise is taken.
    top_db : float
        Dynamic range of the log magnitudes under the target's maximum.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 24, lag_seconds: float = 0.008,
                 top_db: float = 50.0) -> None:
        super().__init__()
        self.win = max(8, round(0.032 * sample_rate))
        self.hop = max(1, round(0.002 * sample_rate))
        self.lag = max(1, round(lag_seconds * sample_rate / self.hop))
        self.top = 10.0 ** (-top_db / 20.0)
        self.n_fft, basis, window = _mel_setup(sample_rate, self.win, n_mels,
                                               min(30.0, sample_rate / 8))
        self.register_buffer("mel_basis", basis, persistent=False)
        self.register_buffer("window", window, persistent=False)

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` audio to ``(B, n_mels, ceil(T / hop))`` mel magnitudes."""
        return _mel_mag(x, self.mel_basis, self.n_fft, self.hop, self.win, self.window)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target``, both ``(B, T)`` or ``(T,)``.

        Returns
        -------
        dict
            ``loss``: mean ``|flux(input) - flux(target)|`` over batch, bands and frames.
        """
        x, y = _as_batch(input), _as_batch(target)
        mx, my = self.mel(x), self.mel(y)
        floor = (my.detach().amax(dim=(1, 2), keepdim=True) * self.top).clamp_min(LOG_EPS)
        fx = log_mel_flux(mx, floor, self.lag)
        fy = log_mel_flux(my, floor, self.lag)
        return {"loss": (fx - fy).abs().mean()}


def attack_gate(onsets: torch.Tensor, hop: int, before: int = 2, after: int = 40,
                ramp: int = 2) -> torch.Tensor:
    """Sample-rate gate that is 1 around note attacks and 0 elsewhere.

    Parameters
    ----------
    onsets : torch.Tensor
        ``(B, F)`` per MIDI frame: nonzero where any key starts a note (for example the
        onset channels of ``roll+onset+pedal`` summed over keys, or the roll's rises).
    hop : int
        Audio samples per MIDI frame.
    before, after : int
        Frames gated before the first and after the last nonzero onset frame of a run.
    ramp : int
        Frames of the linear fade at each edge (a moving average of the hard gate), so
        the gate's edges add no click of their own.

    Returns
    -------
    torch.Tensor
        ``(B, F * hop)`` gate in [0, 1], the dtype of ``onsets``.
    """
    on = (onsets != 0).to(onsets.dtype)[:, None]  # (B, 1, F)
    # frame t is gated when an onset frame lies in [t - after, t + before]
    hard = F.max_pool1d(F.pad(on, (after, before)), after + before + 1, stride=1)
    if ramp > 0:
        hard = F.avg_pool1d(F.pad(hard, (ramp // 2, ramp - ramp // 2)), ramp + 1, stride=1)
    return hard[:, 0].repeat_interleave(hop, dim=-1)


class AttackLoss(nn.Module):
    """The small-window MSSL of the audio around note attacks only.

    The MSSL averages over every frame of a crop, and a note's first 40 ms are a few
    percent of them, so an attack that rises slowly, or merges with a louder neighbour's in
    a chord, costs little; the aligner that times the synthesiser (``evaluate --timing``)
    places exactly those notes early (measured: single notes -0.3 ms bias, chord notes
    -6 ms, notes beside a louder one -11 ms).  Here both signals are multiplied by
    :func:`attack_gate` (2 ms before to 40 ms after each onset, 2 ms fades) and compared
    with the MSSL's three smallest windows (4-16 ms at 16 kHz), per item divided by the
    gate's mean (a per-attack-second loss whatever the note density), so the loss is the
    spectral shape of the attacks alone.  Not part of either paper: ``pianossm train
    --attack-weight`` adds it to the training loss (validation stays MSSL).

    Parameters
    ----------
    sample_rate : int
        Audio rate in Hz (the FFT sizes are the MSSL's three smallest at that rate).
    hop : int
        Audio samples per MIDI frame.
    """

    def __init__(self, sample_rate: int = 16000, hop: int = 16) -> None:
        super().__init__()
        self.hop = hop
        self.mssl = MSSL(sample_rate, fft_sizes=tuple(sorted(mssl_fft_sizes(sample_rate))[:3]))

    def forward(self, input: torch.Tensor, target: torch.Tensor, onsets: torch.Tensor,
                ) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target`` (``(B, T)``) around ``(B, F)`` ``onsets``.

        Returns
        -------
        dict
            ``loss``: the MSSL (three small windows) of the gated signals over the gate's
            mean (at least 0.01), per item, averaged over the batch.
        """
        x, y = _as_batch(input), _as_batch(target)
        gate = attack_gate(onsets, self.hop).to(x.dtype)
        n = min(x.shape[-1], gate.shape[-1])
        gate = F.pad(gate[..., :n], (0, x.shape[-1] - n))
        # per item and gated second: a crop with one attack weighs that attack as one with
        # twenty does all of its; per item, so that a batch split over threads sums the same
        share = gate.mean(-1).clamp_min(0.01)
        per_item = [self.mssl(x[i] * gate[i], y[i] * gate[i])["loss"] / share[i]
                    for i in range(x.shape[0])]
        return {"loss": torch.stack(per_item).mean()}


def key_filters(sample_rate: int, n_fft: int, lowest: int = 21, keys: int = 88,
                ) -> torch.Tensor:
    """Triangular filters on a log-frequency axis, one per piano key.

    Filter ``k`` weighs FFT bin ``f`` by ``max(0, 1 - |12 log2(f / f_k)|)`` where ``f_k``
    is the equal-tempered frequency of MIDI note ``lowest + k`` (A4 = 440 Hz): one
    semitone either side, so neighbouring keys overlap by half.  A key whose triangle holds
    no bin (the low keys, where bins are wider than a semitone) takes the bin nearest to
    its frequency.  A key above the Nyquist frequency keeps what of its triangle lies below
    it (zero when all of it lies above).

    Returns
    -------
    torch.Tensor
        ``(keys, n_fft // 2 + 1)`` float32.
    """
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    centre = 440.0 * 2.0 ** ((torch.arange(keys, dtype=torch.float64) + lowest - 69) / 12)
    semis = 12 * torch.log2(freqs[None, 1:] / centre[:, None])
    out = torch.zeros(keys, len(freqs), dtype=torch.float64)
    out[:, 1:] = torch.clamp(1 - semis.abs(), min=0)
    for k in range(keys):
        if centre[k] < sample_rate / 2 and out[k].sum() == 0:
            out[k, int(torch.argmin((freqs - centre[k]).abs()))] = 1.0
    return out.float()


class PitchLoss(nn.Module):
    """L1 distance of log per-key spectra: charges a note played at the wrong pitch.

    The MSSL compares linear-frequency bins, most of them far above the fundamentals,
    and a model can lower it with a generic resonance that ignores which key is played:
    the default model trained on the MSSL alone (step 49500) answered every isolated note
    of its training set, A0 to C8, with the same partials near 290 and 370 Hz, where the
    published S checkpoint puts the loudest key of 10 of 11 test notes on the note's own
    pitch class (``scripts/pitch_default.py``).  Here a 256 ms Hann STFT (16 ms hop at
    16 kHz) is summed into the 88 key bands of :func:`key_filters`, and the loss is the
    mean ``|log(a + floor) - log(b + floor)|`` over batch, keys and frames, the floor 60 dB
    under the target's loudest band (per item), so each key's presence counts alike.  Not
    part of either paper: ``pianossm train --pitch-weight`` adds it (validation stays MSSL).

    Parameters
    ----------
    sample_rate : int
        Audio rate in Hz; FFT ``4096 * sample_rate / 16000`` rounded to a power of two.
    top_db : float
        Dynamic range under the target's loudest band.
    """

    def __init__(self, sample_rate: int = 16000, top_db: float = 60.0) -> None:
        super().__init__()
        self.n_fft = 1 << round(math.log2(4096 * sample_rate / 16000))
        self.hop = self.n_fft // 16
        self.top = 10.0 ** (-top_db / 20.0)
        self.register_buffer("basis", key_filters(sample_rate, self.n_fft), persistent=False)

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` audio to ``(B, 88, frames)`` key-band magnitudes."""
        return torch.matmul(self.basis.to(x.dtype), stft_mag(x, self.n_fft, self.hop))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of ``input`` against ``target``, both ``(B, T)`` or ``(T,)``.

        Returns
        -------
        dict
            ``loss``: mean L1 of the floored log key-band magnitudes.
        """
        x, y = _as_batch(input), _as_batch(target)
        kx, ky = self.keys(x), self.keys(y)
        floor = (ky.detach().amax(dim=(1, 2), keepdim=True) * self.top).clamp_min(LOG_EPS)
        return {"loss": (torch.log(kx + floor) - torch.log(ky + floor)).abs().mean()}
