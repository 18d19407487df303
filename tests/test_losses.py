"""MSSL and SMML: zero on identical inputs, closed-form cases, a slow reference, scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pianossm.losses import (ENV_FLOOR, LOG_EPS, MSSL, SMML, AttackLoss, EnvelopeLoss,
                             FluxLoss, PitchLoss, attack_gate, key_filters, log_envelope,
                             mssl_fft_sizes, stft_mag)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _np_spec(a: np.ndarray, n: int) -> np.ndarray:
    """tf.signal.stft framing with numpy: periodic Hann, hop n/4, zero-padded end."""
    hop = n // 4
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    frames = -(-len(a) // hop)
    a = np.concatenate([a, np.zeros((frames - 1) * hop + n - len(a))])
    return np.abs(np.stack([np.fft.rfft(a[f * hop:f * hop + n] * w) for f in range(frames)]))


def _reference_mssl(x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...]) -> float:
    """DDSP's definition written out with numpy (slow, obvious)."""
    total = 0.0
    for n in sizes:
        sx, sy = _np_spec(x, n), _np_spec(y, n)
        total += np.mean(np.abs(sx - sy))
        total += np.mean(np.abs(np.log(np.where(sx <= LOG_EPS, LOG_EPS, sx))
                                - np.log(np.where(sy <= LOG_EPS, LOG_EPS, sy))))
    return float(total)


def test_fft_sizes_scale_with_rate() -> None:
    assert mssl_fft_sizes(16000) == (4096, 2048, 1024, 512, 256, 128, 64)
    assert mssl_fft_sizes(32000) == (8192, 4096, 2048, 1024, 512, 256, 128)
    assert mssl_fft_sizes(24000)[0] == 6144


def test_identical_inputs_give_zero() -> None:
    x = torch.from_numpy(_rng().standard_normal((2, 5000))).float()
    for loss in (MSSL(16000), SMML(16000)):
        out = loss(x, x.clone())
        assert out["loss"].item() == pytest.approx(0.0, abs=1e-7)


def test_mssl_matches_numpy_reference() -> None:
    rng = _rng(1)
    x, y = rng.standard_normal(3001) * 0.1, rng.standard_normal(3001) * 0.3
    sizes = (256, 128, 64)
    got = MSSL(16000, fft_sizes=sizes)(torch.from_numpy(x), torch.from_numpy(y))["loss"]
    assert got.item() == pytest.approx(_reference_mssl(x, y, sizes), rel=1e-9)


def test_mssl_impulse_against_silence_closed_form() -> None:
    """An impulse has a flat spectrum equal to the window value under it, in every bin."""
    t_len, n0 = 1000, 437
    x = torch.zeros(t_len, dtype=torch.float64)
    x[n0] = 1.0
    sizes = (256, 64)
    out = MSSL(16000, fft_sizes=sizes)(x, torch.zeros_like(x))
    expected = 0.0
    for n in sizes:
        hop = n // 4
        frames = -(-t_len // hop)
        vals = []
        for f in range(frames):
            k = n0 - f * hop
            vals.append(0.5 - 0.5 * math.cos(2 * math.pi * k / n) if 0 <= k < n else 0.0)
        vals = np.array(vals)
        expected += vals.mean()  # every bin of a frame has the same magnitude
        expected += np.mean(np.abs(np.log(np.where(vals <= LOG_EPS, LOG_EPS, vals))
                                   - math.log(LOG_EPS)))
    assert out["loss"].item() == pytest.approx(expected, rel=1e-9)


def test_mssl_scale_behaviour() -> None:
    rng = _rng(2)
    x = torch.from_numpy(rng.standard_normal(4000))
    y = torch.from_numpy(rng.standard_normal(4000))
    loss = MSSL(16000)
    a = loss(x, y)
    b = loss(3.0 * x, 3.0 * y)
    # linear magnitudes scale with the gain, log magnitudes differences do not change
    assert b["mag"].item() == pytest.approx(3.0 * a["mag"].item(), rel=1e-9)
    assert b["logmag"].item() == pytest.approx(a["logmag"].item(), rel=1e-6)
    # a pure gain error: log term is |log g| on every bin where nothing is clipped
    g = loss(2.0 * x, x)
    assert g["logmag"].item() == pytest.approx(len(loss.fft_sizes) * math.log(2.0), rel=1e-3)


def test_no_nan_on_silence_and_finite_gradients() -> None:
    z = torch.zeros(2, 4000, requires_grad=True)
    for loss in (MSSL(16000), SMML(16000)):
        out = loss(z, torch.zeros(2, 4000))
        assert out["loss"].item() == 0.0
        out["loss"].backward()
        assert torch.isfinite(z.grad).all()
        z.grad = None
    x = torch.from_numpy(_rng(3).standard_normal((2, 4000))).float()
    out = MSSL(16000)(x, torch.zeros_like(x))
    assert torch.isfinite(out["loss"]) and out["loss"].item() > 0


def test_smml_parts_and_mean_term() -> None:
    x = torch.full((1, 16000), 0.25)
    y = torch.zeros(1, 16000)
    out = SMML(16000)(x, y)
    assert out["mean"].item() == pytest.approx(0.0625)
    assert set(out) == {"loss", "stft", "mel_sc", "mel_log", "mean"}
    # the mean term is never negative, even when the input mean is below the target's
    assert SMML(16000)(-x, y)["mean"].item() == pytest.approx(0.0625)


def test_smml_spectral_convergence_closed_form() -> None:
    """For ``x = g * y`` the mel spectra scale by ``g``: SC = |1 - g|, log L1 = |log g|."""
    y = torch.from_numpy(_rng(4).standard_normal((1, 8000)))
    out = SMML(16000)(0.5 * y, y)
    assert out["mel_sc"].item() == pytest.approx(0.5, rel=1e-9)
    # bins whose target is below the log floor (empty mel bands at DC) contribute 0
    unclipped = (SMML(16000)._mel(y) > 2 * LOG_EPS).double().mean().item()
    assert unclipped > 0.9
    assert out["mel_log"].item() == pytest.approx(math.log(2.0) * unclipped, rel=1e-6)
    assert out["stft"].item() == pytest.approx(
        0.5 * stft_mag(y, 16000, 1600).mean().item(), rel=1e-9)


@pytest.mark.parametrize("rate", [16000, 24000, 44100])
def test_smml_window_scales_with_rate(rate: int) -> None:
    loss = SMML(rate)
    assert loss.mel_win / rate == pytest.approx(1024 / 22050, rel=2e-3)
    assert loss.mel_hop / rate == pytest.approx(128 / 22050, rel=1e-2)
    assert loss.mel_fft >= loss.mel_win and loss.stft_fft == rate
    assert loss.mel_basis.shape == (80, loss.mel_fft // 2 + 1)


def test_log_envelope_against_numpy_frames() -> None:
    x = _rng(3).standard_normal((2, 101)).astype(np.float64)
    got = log_envelope(torch.from_numpy(x), 8, 4).numpy()
    frames = -(-101 // 4)
    padded = np.concatenate([x, np.zeros((2, (frames - 1) * 4 + 8 - 101))], axis=1)
    rms = np.stack([np.sqrt(np.mean(padded[:, f * 4:f * 4 + 8] ** 2, axis=1))
                    for f in range(frames)], axis=1)
    np.testing.assert_allclose(got, np.log(np.maximum(rms, ENV_FLOOR)), rtol=1e-12)


def test_envelope_loss_closed_form_gain_and_delay() -> None:
    rate = 16000
    loss = EnvelopeLoss(rate)
    assert (loss.frame, loss.hop) == (32, 16)
    y = torch.from_numpy(_rng(4).standard_normal(rate) * 0.1)
    assert loss(y, y)["loss"].item() == 0.0
    # a gain g moves every (above-floor) frame's log RMS by log g
    assert loss(0.5 * y, y)["loss"].item() == pytest.approx(math.log(2), rel=1e-9)
    # a 20 ms late onset: 20 frames of the 1000 are at the floor instead of log(0.1)-ish
    burst = torch.zeros(rate, dtype=torch.float64)
    burst[4000:12000] = y[4000:12000]
    late = torch.roll(burst, 320)
    got = loss(late, burst)["loss"].item()
    frames = -(-rate // 16)
    assert got > 18 * (math.log(0.1) - math.log(ENV_FLOOR)) / frames
    assert loss(late, burst)["loss"].item() > loss(torch.roll(burst, 32), burst)["loss"].item()


def _np_flux(a: np.ndarray, loss: FluxLoss, floor: float) -> np.ndarray:
    """Per-band flux written out with numpy: framed rfft, mel, floored log, rise over lag."""
    mel = loss.mel_basis.double().numpy() @ _np_spec_frames(a, loss).T  # (M, N)
    log_m = np.log(np.maximum(mel, floor))
    return np.maximum(log_m[:, loss.lag:] - log_m[:, :-loss.lag], 0.0)


def test_flux_loss_against_numpy_reference() -> None:
    rate = 16000
    loss = FluxLoss(rate)
    assert (loss.win, loss.n_fft, loss.hop, loss.lag) == (512, 512, 32, 4)
    rng = _rng(5)
    y = rng.standard_normal(4000) * np.exp(-np.arange(4000) / 800.0)
    y[:1500] = 0.0  # an onset at 1500 samples
    x = 0.3 * rng.standard_normal(4000) * (np.arange(4000) > 1700)
    got = loss(torch.from_numpy(x), torch.from_numpy(y))["loss"].item()
    peak = float(np.max(loss.mel_basis.double().numpy() @ _np_spec_frames(y, loss).T))
    floor = max(peak * 10 ** (-50 / 20), LOG_EPS)  # 50 dB under the target's loudest cell
    want = np.mean(np.abs(_np_flux(x, loss, floor) - _np_flux(y, loss, floor)))
    # 1e-6: the module's Hann window is float32 (widened to float64), the reference's exact
    assert got == pytest.approx(want, rel=1e-6)


def _np_spec_frames(a: np.ndarray, loss: FluxLoss) -> np.ndarray:
    """``(N, n_fft/2+1)`` magnitudes with FluxLoss's framing (for the floor)."""
    n, hop = loss.n_fft, loss.hop
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    frames = -(-len(a) // hop)
    a = np.concatenate([a, np.zeros((frames - 1) * hop + n - len(a))])
    return np.abs(np.stack([np.fft.rfft(a[f * hop:f * hop + n] * w) for f in range(frames)]))


def test_flux_loss_zero_gain_invariant_and_grows_with_delay() -> None:
    rate = 16000
    loss = FluxLoss(rate)
    t = np.arange(rate) / rate
    # two notes 40 ms apart in different bands, decaying: a chord's spread
    y = (np.sin(2 * np.pi * 220 * t) * np.exp(-(t - 0.3) / 0.4) * (t >= 0.3)
         + 0.5 * np.sin(2 * np.pi * 1760 * t) * np.exp(-(t - 0.34) / 0.3) * (t >= 0.34))
    y = torch.from_numpy(y)
    assert loss(y, y)["loss"].item() == 0.0
    # log magnitudes, floored relative to the target's peak: a common gain cancels
    late = torch.roll(y, 160)
    assert loss(3.0 * late, 3.0 * y)["loss"].item() == pytest.approx(
        loss(late, y)["loss"].item(), rel=1e-9)
    shifts = [loss(torch.roll(y, d), y)["loss"].item() for d in (32, 80, 160, 320)]
    assert all(a < b for a, b in zip(shifts, shifts[1:])), shifts
    # the upper note struck with the lower one (the chord's spread lost) costs too
    merged = (np.sin(2 * np.pi * 220 * t) * np.exp(-(t - 0.3) / 0.4) * (t >= 0.3)
              + 0.5 * np.sin(2 * np.pi * 1760 * t) * np.exp(-(t - 0.3) / 0.3) * (t >= 0.3))
    assert loss(torch.from_numpy(merged), y)["loss"].item() > shifts[0]
    # gradients reach the input
    x = (0.9 * y).requires_grad_()
    loss(x, y)["loss"].backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_attack_gate_closed_form() -> None:
    # onset boxes at frames 10-11 and 50 of 100 (hop 3): gated from 2 frames before to
    # 40 after each box, with 2-frame linear fades (a 3-tap moving average of the hard gate)
    on = torch.zeros(1, 100, dtype=torch.float64)
    on[0, 10:12] = 0.7
    on[0, 50] = 0.2
    hard = np.zeros(100)
    for first, last in ((10, 11), (50, 50)):
        hard[max(0, first - 2):last + 41] = 1.0
    want = np.convolve(np.pad(hard, (1, 1)), np.ones(3) / 3, mode="valid")
    got = attack_gate(on, 3)
    assert got.shape == (1, 300)
    np.testing.assert_allclose(got[0, ::3].numpy(), want, atol=1e-12)
    np.testing.assert_array_equal(got[0].numpy(), np.repeat(got[0, ::3].numpy(), 3))
    assert attack_gate(torch.zeros(2, 7), 4).abs().sum() == 0


def test_attack_loss_is_the_gated_small_window_mssl() -> None:
    rate, hop = 16000, 16
    loss = AttackLoss(rate, hop)
    assert loss.mssl.fft_sizes == (64, 128, 256)
    rng = _rng(7)
    y = torch.from_numpy(rng.standard_normal(8000) * 0.1)
    x = torch.from_numpy(rng.standard_normal(8000) * 0.1)
    on = torch.zeros(1, 500, dtype=torch.float64)
    on[0, 100:110] = 1.0  # one attack at 100 ms
    gate = attack_gate(on, hop)[0]
    want = MSSL(rate, fft_sizes=(64, 128, 256))(x * gate, y * gate)["loss"] / gate.mean()
    assert loss(x, y, on)["loss"].item() == pytest.approx(want.item(), rel=1e-12)
    # per item: a batch's loss is the mean of its items' (the second has no attack)
    pair = loss(torch.stack([x, x]), torch.stack([y, y]), torch.cat([on, 0 * on]))["loss"]
    assert pair.item() == pytest.approx(want.item() / 2, rel=1e-12)
    # audio far from any attack does not count; no attack at all costs nothing
    far = y.clone()
    far[4000:] += 1.0
    assert loss(far, y, on)["loss"].item() == 0.0
    assert loss(x, y, torch.zeros_like(on))["loss"].item() == 0.0
    # an attack moved late costs more the further it moves
    t = torch.arange(8000, dtype=torch.float64) / rate
    note = torch.sin(2 * torch.pi * 440 * t) * torch.exp(-(t - 0.1) / 0.2) * (t >= 0.1)
    costs = [loss(torch.roll(note, d), note, on)["loss"].item() for d in (0, 32, 80, 160)]
    assert costs[0] == 0.0 and all(a < b for a, b in zip(costs, costs[1:])), costs


def test_key_filters_closed_form() -> None:
    fb = key_filters(16000, 4096).double().numpy()
    assert fb.shape == (88, 2049)
    freqs = np.arange(2049) * 16000 / 4096
    # A4 (key 48 of 88): triangles one semitone wide on a log axis, peak at 440 Hz
    a4 = fb[69 - 21]
    nz = np.nonzero(a4)[0]
    semis = 12 * np.log2(freqs[nz] / 440.0)
    np.testing.assert_allclose(a4[nz], 1 - np.abs(semis), atol=1e-6)
    assert np.all(np.abs(semis) < 1)
    # the lowest keys, narrower than a bin, still have their nearest bin
    assert np.all(fb.sum(axis=1) > 0)
    assert fb[0, round(27.5 * 4096 / 16000)] > 0
    # a key whose whole triangle lies above Nyquist stays empty (C8 at 4 kHz sampling)
    assert key_filters(4000, 1024)[-1].sum() == 0


def test_pitch_loss_charges_a_wrong_pitch_not_a_gain() -> None:
    rate = 16000
    loss = PitchLoss(rate)
    assert (loss.n_fft, loss.hop) == (4096, 256)
    t = torch.arange(2 * rate, dtype=torch.float64) / rate

    def tone(midi: float) -> torch.Tensor:
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        return sum(torch.sin(2 * torch.pi * h * f0 * t) / h for h in (1, 2, 3)) * torch.exp(-t)

    c4 = tone(60)
    assert loss(c4, c4)["loss"].item() == 0.0
    # the floor is relative to the target: a common gain changes nothing
    assert loss(0.5 * tone(61), 0.5 * c4)["loss"].item() == pytest.approx(
        loss(tone(61), c4)["loss"].item(), rel=1e-9)
    # a semitone off costs more than 20 % too loud, and a tone further off more still
    costs = [loss(x, c4)["loss"].item() for x in (1.2 * c4, tone(61), tone(62), tone(66))]
    assert costs[0] < costs[1] < costs[2] < costs[3], costs
    # against the numpy reference: key bands of a framed rfft, floored log, mean L1
    rng = _rng(3)
    x, y = rng.standard_normal(6000), rng.standard_normal(6000) * np.linspace(0, 1, 6000)
    got = loss(torch.from_numpy(x), torch.from_numpy(y))["loss"].item()
    basis = loss.basis.double().numpy()

    def bands(a: np.ndarray) -> np.ndarray:
        n, hop = loss.n_fft, loss.hop
        w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
        frames = -(-len(a) // hop)
        a = np.concatenate([a, np.zeros((frames - 1) * hop + n - len(a))])
        mag = np.abs(np.stack([np.fft.rfft(a[f * hop:f * hop + n] * w) for f in range(frames)]))
        return basis @ mag.T

    bx, by = bands(x), bands(y)
    floor = max(by.max() * 10 ** (-60 / 20), LOG_EPS)
    want = np.mean(np.abs(np.log(bx + floor) - np.log(by + floor)))
    assert got == pytest.approx(want, rel=1e-6)
