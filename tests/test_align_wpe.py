"""WPE linear-prediction filtering before alignment (pianossm.align.wpe)."""

import numpy as np
import pytest

from pianossm.align.features import SAMPLE_RATE
from pianossm.align.wpe import wpe_filter
from pianossm.errors import PianoSSMError

SR = SAMPLE_RATE


def _struck_twice(seed: int = 0) -> tuple[np.ndarray, float, float]:
    """A4 with 6 harmonics struck at 0.5 s, decaying (tau 1.5 s), struck again at 2.0 s
    while it still rings (the hard case for an aligner), a little noise (-60 dB)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(4.0 * SR)) / SR
    x = np.zeros_like(t)
    for start, amp in ((0.5, 1.0), (2.0, 0.8)):
        k = t >= start
        env = amp * np.exp(-(t[k] - start) / 1.5) * np.minimum(1.0, (t[k] - start) / 0.002)
        phase = rng.uniform(0, 2 * np.pi, 6)
        x[k] += env * sum(np.sin(2 * np.pi * 440.0 * h * (t[k] - start) + phase[h - 1]) / h
                          for h in range(1, 7))
    x += 1e-3 * rng.standard_normal(len(x))
    return (x / np.abs(x).max()).astype(np.float32), 0.5, 2.0


def _energy_db(x: np.ndarray, a: float, b: float) -> float:
    return 10 * np.log10(np.mean(x[int(a * SR):int(b * SR)] ** 2) + 1e-20)


def test_sustain_falls_far_below_the_attack_and_a_second_strike_stands_out():
    x, first, second = _struck_twice()
    y = wpe_filter(x)
    assert y.shape == x.shape and y.dtype == np.float32
    # the sustain 0.2-1.2 s after the first strike, against the strike's first 30 ms
    drop_in = _energy_db(x, first, first + 0.03) - _energy_db(x, first + 0.2, first + 1.2)
    drop_out = _energy_db(y, first, first + 0.03) - _energy_db(y, first + 0.2, first + 1.2)
    assert drop_in < 6.0 and drop_out > 15.0, (drop_in, drop_out)
    # the second strike over the 100 ms before it: under 10 dB in, 20 dB more out
    rise_in = _energy_db(x, second, second + 0.03) - _energy_db(x, second - 0.1, second)
    rise_out = _energy_db(y, second, second + 0.03) - _energy_db(y, second - 0.1, second)
    assert rise_in < 10.0 and rise_out > rise_in + 20.0, (rise_in, rise_out)


def test_deterministic_and_finite():
    x, _, _ = _struck_twice(seed=1)
    a, b = wpe_filter(x), wpe_filter(x)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))


def test_silence_and_very_short_input_come_back_unchanged():
    np.testing.assert_array_equal(wpe_filter(np.zeros(SR, np.float32)), np.zeros(SR))
    short = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(wpe_filter(short), short)


def test_bad_input_is_refused_by_name():
    with pytest.raises(PianoSSMError, match="mono"):
        wpe_filter(np.zeros((SR, 2), np.float32))
    with pytest.raises(PianoSSMError, match="taps"):
        wpe_filter(np.ones(SR, np.float32), taps=0)


def test_bins_above_max_hz_pass_unchanged():
    """Only the STFT bins up to ``max_hz`` are filtered: a steady 6.5 kHz tone comes out as
    it went in, while the struck note's sustain below falls; with ``max_hz`` at Nyquist the
    whole band is filtered (the tone's steady sound is predicted away too)."""
    import torch

    from pianossm.align.wpe import MAX_HZ, N_FFT, SHIFT

    x, first, _ = _struck_twice(seed=2)
    t = np.arange(len(x)) / SR
    tone = (0.2 * np.sin(2 * np.pi * 6500.0 * t)).astype(np.float32)
    win = torch.hann_window(N_FFT)

    def spec(sig):
        return torch.stft(torch.from_numpy(sig), N_FFT, SHIFT, window=win,
                          return_complex=True).numpy()

    top = int(np.ceil(MAX_HZ * N_FFT / SR)) + 1
    s_in, s_out = spec(x + tone), spec(wpe_filter(x + tone))
    np.testing.assert_allclose(s_out[top:], s_in[top:], atol=1e-4 * np.abs(s_in).max())
    y_full = wpe_filter(x + tone, max_hz=SR / 2)
    k = round(6500.0 * N_FFT / SR)
    steady = slice(int(1.0 * SR / SHIFT), int(1.4 * SR / SHIFT))  # 1.0-1.4 s: tone only rings
    assert np.abs(spec(y_full)[k, steady]).mean() < 0.1 * np.abs(s_in[k, steady]).mean()
    # the note's sustain is filtered either way
    assert _energy_db(wpe_filter(x), first + 0.2, first + 1.2) < _energy_db(x, first + 0.2,
                                                                           first + 1.2) - 10
    with pytest.raises(PianoSSMError, match="max_hz"):
        wpe_filter(x, max_hz=0.0)
