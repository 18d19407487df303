"""The CRNN: shapes, versioned checkpoints, the loss, metrics."""

import numpy as np
import pytest
import torch

from pianossm.align.metrics import format_table, summarize
from pianossm.align.model import (
    FORMAT,
    AlignCRNN,
    CRNNConfig,
    _harmonic_stack,
    fold_batchnorm,
    harmonic_offsets,
    load_crnn,
    save_crnn,
    with_key_context,
    with_local_head,
    with_plain_cqt,
    with_velocity,
)
from pianossm.align.train import alignment_loss, average
from pianossm.errors import PianoSSMError


@pytest.fixture
def small():
    torch.manual_seed(0)
    return AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)).eval()


def test_forward_shape(small):
    y = small(torch.rand(2, 3, 37, 88))
    assert y.shape == (2, 2, 37, 88)


def test_forward_windows_equals_forward(small):
    torch.manual_seed(0)
    x = torch.randn(5, 3, 40, 88)
    with torch.inference_mode():
        whole = small(x)
        windows = small.forward_windows(x)
        one = torch.cat([small(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(windows, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(windows, one, rtol=1e-5, atol=1e-5)


def test_forward_spans_share_the_convolutions_of_the_whole_input(small, monkeypatch):
    """Chunked features (each chunk with ``halo`` frames of context) equal one pass over
    the whole input; each span's logits are the BiGRU and head on its slice of them; one
    span over the whole input is ``forward``."""
    net = with_local_head(small, 2)
    torch.nn.init.normal_(net.harm.weight, std=0.1, generator=torch.Generator().manual_seed(4))
    torch.nn.init.normal_(net.local.weight, std=0.1, generator=torch.Generator().manual_seed(5))
    x = torch.randn(1, 3, 100, 88, generator=torch.Generator().manual_seed(6))
    spans = [(0, 40), (30, 70), (60, 100)]
    with torch.inference_mode():
        f, local = net._features(x)
        for chunk in (17, 50, 100):
            fc, lc = net.sequence_features(x, chunk)
            torch.testing.assert_close(fc, f, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lc, local, rtol=1e-5, atol=1e-5)
        got = net.forward_spans(x, spans, chunk=17)
        for i, (a, b) in enumerate(spans):
            h, _ = net.rnn(f[:, a:b])
            want = net._head(h, x[:, :, a:b], local[:, :, a:b])
            torch.testing.assert_close(got[i:i + 1], want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net.forward_spans(x, [(0, 100)], chunk=30), net(x),
                                   rtol=1e-5, atol=1e-5)
        # with less context than the receptive field the chunks' edges differ
        assert net.halo == 10
        monkeypatch.setattr(type(net), "halo", property(lambda self: 8))
        assert float((net.sequence_features(x, 17)[1] - local).abs().max()) > 1e-3


def test_fold_batchnorm_keeps_the_logits(small):
    """Batch norms with non-trivial statistics folded into their convolutions: the same
    logits (eval mode), the original network untouched."""
    g = torch.Generator().manual_seed(7)
    for bn in (small.block1[1], small.block1[4], small.block2[1], small.block2[4]):
        bn.running_mean.normal_(0, 0.5, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
        bn.weight.data.normal_(1, 0.2, generator=g)
        bn.bias.data.normal_(0, 0.2, generator=g)
    folded = fold_batchnorm(small)
    assert isinstance(folded.block1[1], torch.nn.Identity) and not folded.training
    assert isinstance(small.block1[1], torch.nn.BatchNorm2d)
    x = torch.randn(2, 3, 40, 88, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), small(x), rtol=1e-4, atol=1e-4)


def test_channels_last_weights_keep_the_logits(small):
    """The aligner keeps its networks' weights channels-last (``align.api._model``: a
    faster convolution path on the CPU); the features, the per-key path and the logits of
    long inputs are those of the contiguous network."""
    import copy

    net = with_local_head(small, 2)
    torch.nn.init.normal_(net.harm.weight, std=0.1, generator=torch.Generator().manual_seed(8))
    torch.nn.init.normal_(net.local.weight, std=0.1, generator=torch.Generator().manual_seed(9))
    cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    assert cl.block1[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 120, 88, generator=torch.Generator().manual_seed(10))
    with torch.inference_mode():
        for got, want in zip(cl.sequence_features(x, 50), net.sequence_features(x, 50)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cl.forward_spans(x, [(0, 60), (60, 120)], chunk=50),
                                   net.forward_spans(x, [(0, 60), (60, 120)], chunk=50),
                                   rtol=1e-5, atol=1e-5)


def test_local_head_starts_as_the_network_it_widens(small, tmp_path):
    """The per-key path is zero when added: same logits; once its weights move, each key's
    logits change only where that key's (and its neighbours') conv features do."""
    wide = with_local_head(small)
    assert wide.config.local_head and not wide.training and with_local_head(wide) is wide
    x = torch.randn(2, 3, 30, 88, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(wide(x), small(x), rtol=0, atol=0)
        torch.nn.init.normal_(wide.local.weight, std=0.1)
        delta = wide(x) - small(x)
        feats = wide.block2(wide.block1(x))
        torch.testing.assert_close(delta, wide.local(feats), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wide.forward_windows(x), wide(x), rtol=1e-5, atol=1e-5)
    save_crnn(tmp_path / "w.pt", wide)
    again, _ = load_crnn(tmp_path / "w.pt")
    assert again.config.local_head

    # harmonics added to a trained path: its weights kept, the new ones zero
    harm = with_local_head(wide, 2)
    assert harm.config.local_harmonics == 2 and with_local_head(harm, 1) is harm
    with torch.inference_mode():
        torch.testing.assert_close(harm(x), wide(x), rtol=0, atol=0)
        # the centre tap of feature 0 of the second harmonic (12 keys up) into the onsets:
        # key k's onset logit gains key k + 12's feature, keys above 75 nothing
        harm.harm.weight[0, 0, 2, 1] = 1.0
        gain = (harm(x) - wide(x))[:, 0]
        torch.testing.assert_close(gain[..., :76], feats[:, 0, :, 12:], rtol=1e-5, atol=1e-5)
        assert float(gain[..., 76:].abs().max()) == 0.0
        # the fast per-key path equals its definition (stacked harmonics, one convolution)
        torch.nn.init.normal_(harm.harm.weight, std=0.1, generator=torch.Generator().manual_seed(2))
        want = harm.local(feats) + harm.harm(_harmonic_stack(feats, 2))
        torch.testing.assert_close(harm._local_logits(feats), want, rtol=1e-5, atol=1e-5)
    assert harmonic_offsets(4) == [12, 19, 24, 28]
    for bad in (-1, 17):
        with pytest.raises(PianoSSMError, match="local_harmonics must be 0 to 16, got"):
            CRNNConfig(local_head=True, local_harmonics=bad)


def test_velocity_channel_starts_as_the_network_it_widens(small, tmp_path):
    """The velocity channel's weights are zero when added: the widened network gives the
    same logits whatever the fourth channel holds; once its weights move, the logits
    depend on it (through the convolutions, the projection and the head's skip)."""
    wide = with_velocity(with_local_head(small, 2))
    assert wide.config.velocity and wide.config.in_channels == 4 and not wide.training
    assert with_velocity(wide) is wide and wide.config.local_harmonics == 2
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 30, 88, generator=g)
    v1, v2 = torch.rand(2, 1, 30, 88, generator=g), torch.rand(2, 1, 30, 88, generator=g)
    narrow = with_local_head(small, 2)
    with torch.inference_mode():
        want = narrow(x)
        # (the 4-channel convolution may sum in another order: rounding only)
        torch.testing.assert_close(wide(torch.cat([x, v1], 1)), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wide(torch.cat([x, v2], 1)), wide(torch.cat([x, v1], 1)),
                                   rtol=0, atol=0)
        # the head's skip weight of the velocity of key 5 into key 5's onset logit
        wide.head.weight[5, wide.head.weight.shape[1] - 88 + 5] = 1.0
        delta = wide(torch.cat([x, v1], 1)) - want
        torch.testing.assert_close(delta[:, 0, :, 5], v1[:, 0, :, 5], rtol=1e-5, atol=1e-5)
        delta[:, 0, :, 5] = 0
        assert float(delta.abs().max()) < 1e-5
    save_crnn(tmp_path / "v.pt", wide)
    again, _ = load_crnn(tmp_path / "v.pt")
    assert again.config.velocity and again.block1[0].weight.shape[1] == 4


def test_plain_cqt_channel_starts_as_the_network_it_widens(small, tmp_path):
    """The plain CQT's channel (after the velocity channel) has zero weights when added:
    the same logits whatever it holds; once its first-convolution weights move, the logits
    depend on it.  Velocity cannot be added after it (its channel would have to move)."""
    vel = with_velocity(small)
    wide = with_plain_cqt(vel)
    assert wide.config.plain_cqt and wide.config.in_channels == 5 and not wide.training
    assert with_plain_cqt(wide) is wide
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 30, 88, generator=g)
    p1, p2 = torch.rand(2, 1, 30, 88, generator=g), torch.rand(2, 1, 30, 88, generator=g)
    with torch.inference_mode():
        want = vel(x)
        torch.testing.assert_close(wide(torch.cat([x, p1], 1)), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wide(torch.cat([x, p2], 1)), wide(torch.cat([x, p1], 1)),
                                   rtol=0, atol=0)
        wide.block1[0].weight[:, 4] += 0.5
        assert float((wide(torch.cat([x, p1], 1)) - want).abs().max()) > 1e-3
    with pytest.raises(PianoSSMError, match="velocity"):
        with_velocity(with_plain_cqt(small))
    save_crnn(tmp_path / "p.pt", wide)
    again, _ = load_crnn(tmp_path / "p.pt")
    assert again.config.plain_cqt and again.block1[0].weight.shape[1] == 5


def test_key_context_starts_as_the_network_it_widens(small, tmp_path, monkeypatch):
    """The per-key temporal path's output is zero when added: the same logits.  Once it
    moves, it adds to each key's logits what the definition gives (input convolution on
    the key's own features and input, residual dilated convolutions along time, output
    convolution), reads no other key, and reaches exactly ``halo`` frames: chunked features
    equal the whole input's, and a frame ``halo + 1`` away changes nothing."""
    wide = with_key_context(with_local_head(small, 2), 3, channels=5)
    assert wide.config.key_dilations == [2, 4, 8] and wide.halo == 4 * 2 + 14
    assert with_key_context(wide, 4) is wide and not wide.training
    again = with_key_context(with_local_head(small, 2), 3, channels=5)
    for a, b in zip(wide.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same inner weights each time
    g = torch.Generator().manual_seed(8)
    x = torch.randn(1, 3, 120, 88, generator=g)
    narrow = with_local_head(small, 2)
    with torch.inference_mode():
        torch.testing.assert_close(wide(x), narrow(x), rtol=0, atol=0)
        torch.nn.init.normal_(wide.key_out.weight, std=0.3, generator=g)
        feats = wide.block2(wide.block1(x))
        z = torch.relu(torch.nn.functional.conv2d(torch.cat([feats, x], 1),
                                                  wide.key_in.weight, wide.key_in.bias))
        for conv, d in zip(wide.key_convs, (2, 4, 8), strict=True):
            # each key's column alone: a 1-D convolution along time, dilation d
            col = torch.nn.functional.conv1d(
                z.permute(0, 3, 1, 2).reshape(88, z.shape[1], -1), conv.weight[..., 0],
                conv.bias, padding=d, dilation=d)
            z = z + torch.relu(col.reshape(1, 88, z.shape[1], -1).permute(0, 2, 3, 1))
        want = torch.nn.functional.conv2d(z, wide.key_out.weight, wide.key_out.bias)
        torch.testing.assert_close(wide(x) - narrow(x), want, rtol=1e-4, atol=1e-4)
        f, local = wide._features(x)
        for chunk in (25, 60):
            fc, lc = wide.sequence_features(x, chunk)
            torch.testing.assert_close(fc, f, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lc, local, rtol=1e-5, atol=1e-5)
        # a change halo + 1 frames before frame 60 does not reach it; halo frames does
        for dt, reach in ((wide.halo + 1, False), (wide.halo, True)):
            y = x.clone()
            y[:, 0, 60 - dt] += 1.0
            moved = float((wide._features(y)[1] - local)[:, :, 60].abs().max())
            assert (moved > 1e-6) == reach, (dt, moved)
        monkeypatch.setattr(type(wide), "halo", property(lambda self: 21))
        assert float((wide.sequence_features(x, 25)[1] - local).abs().max()) > 1e-6
    # the velocity channel widens the path's input too
    vel = with_velocity(wide)
    v = torch.rand(1, 1, 120, 88, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(vel(torch.cat([x, v], 1)), wide(x), rtol=1e-5, atol=1e-5)
    save_crnn(tmp_path / "k.pt", vel)
    loaded, _ = load_crnn(tmp_path / "k.pt")
    assert loaded.config.key_context == 3 and loaded.config.key_channels == 5
    for bad in (-1, 8):
        with pytest.raises(PianoSSMError, match="key_context must be 0 to 7, got"):
            CRNNConfig(key_context=bad)


def test_checkpoint_roundtrip_float16(small, tmp_path):
    path = tmp_path / "m.pt"
    save_crnn(path, small, step=3)
    model, payload = load_crnn(path)
    assert payload["step"] == 3 and payload["format"] == FORMAT
    x = torch.rand(1, 3, 20, 88)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), small(x).numpy(), atol=0.05)


def test_average_is_the_weighted_mean_of_the_weights(small, tmp_path):
    torch.manual_seed(1)
    other = AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)).eval()
    save_crnn(tmp_path / "a.pt", small, step=1)
    save_crnn(tmp_path / "b.pt", other, step=2)
    average([str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], [0.3, 0.7],
            str(tmp_path / "soup.pt"), "recipe")
    soup, payload = load_crnn(tmp_path / "soup.pt")
    a, b = load_crnn(tmp_path / "a.pt")[0].state_dict(), load_crnn(tmp_path / "b.pt")[0].state_dict()
    name = next(k for k, v in a.items() if v.is_floating_point() and v.numel() > 4)
    assert not torch.allclose(a[name], b[name])
    np.testing.assert_allclose(soup.state_dict()[name].numpy(),
                               (0.3 * a[name] + 0.7 * b[name]).numpy(), atol=2e-3)
    assert payload["step"] == 2 and payload["command"] == "recipe"
    assert payload["label_latency"] == 0.0  # b has none: labels at the sound
    # the label latency is the last ingredient's unless given; given, it is kept
    save_crnn(tmp_path / "d.pt", other, step=2, label_latency=0.004)
    for given, want in ((None, 0.004), (0.0062, 0.0062)):
        average([str(tmp_path / "a.pt"), str(tmp_path / "d.pt")], [0.5, 0.5],
                str(tmp_path / "soup2.pt"), label_latency=given)
        assert load_crnn(tmp_path / "soup2.pt")[1]["label_latency"] == want
    for bad in (-0.001, 0.2, float("nan")):
        with pytest.raises(PianoSSMError, match="label_latency"):
            average([str(tmp_path / "a.pt"), str(tmp_path / "d.pt")], [0.5, 0.5],
                    str(tmp_path / "x.pt"), label_latency=bad)
    with pytest.raises(PianoSSMError, match="summing to 1"):
        average([str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], [0.5, 0.6],
                str(tmp_path / "x.pt"))
    save_crnn(tmp_path / "c.pt", AlignCRNN(CRNNConfig(channels=4, hidden=6, proj=16)))
    with pytest.raises(PianoSSMError, match="architectures"):
        average([str(tmp_path / "a.pt"), str(tmp_path / "c.pt")], [0.5, 0.5],
                str(tmp_path / "x.pt"))


def test_average_widens_a_network_without_the_plain_cqt(small, tmp_path):
    """A network without the plain-CQT channel joins a soup of ones with it as its widened
    copy (that channel's weights zero): the soup's channel weights are the others' scaled
    by their weights, its shared weights the weighted mean; the widest config is kept."""
    torch.manual_seed(2)
    wide = with_plain_cqt(AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)).eval())
    with torch.no_grad():
        for name in ("block1.0.weight", "proj.0.weight", "head.weight"):
            t = dict(wide.named_parameters())[name]
            t.copy_(torch.randn(t.shape, generator=torch.Generator().manual_seed(3)))
    save_crnn(tmp_path / "narrow.pt", small, step=1)
    save_crnn(tmp_path / "wide.pt", wide, step=2)
    average([str(tmp_path / "narrow.pt"), str(tmp_path / "wide.pt")], [0.25, 0.75],
            str(tmp_path / "soup.pt"))
    soup, payload = load_crnn(tmp_path / "soup.pt")
    assert soup.config.plain_cqt and payload["step"] == 2
    a = load_crnn(tmp_path / "narrow.pt")[0].state_dict()
    b = load_crnn(tmp_path / "wide.pt")[0].state_dict()
    got = soup.state_dict()
    w = got["block1.0.weight"]  # (C, C_in, kt, 3): the plain channel last
    np.testing.assert_allclose(w[:, 3].numpy(), (0.75 * b["block1.0.weight"][:, 3]).numpy(),
                               atol=2e-3)
    np.testing.assert_allclose(w[:, :3].numpy(), (0.25 * a["block1.0.weight"]
                                                  + 0.75 * b["block1.0.weight"][:, :3]).numpy(),
                               atol=2e-3)
    h = got["head.weight"]  # the plain channel's 88 keys last
    np.testing.assert_allclose(h[:, -88:].numpy(), (0.75 * b["head.weight"][:, -88:]).numpy(),
                               atol=2e-3)
    np.testing.assert_allclose(h[:, :-88].numpy(), (0.25 * a["head.weight"]
                                                    + 0.75 * b["head.weight"][:, :-88]).numpy(),
                               atol=2e-3)
    # a soup of the narrow network alone (weight 1, beside the wide at 0) computes it
    average([str(tmp_path / "narrow.pt"), str(tmp_path / "wide.pt")], [1.0, 0.0],
            str(tmp_path / "same.pt"))
    same = load_crnn(tmp_path / "same.pt")[0]
    x = torch.rand(1, 3, 25, 88, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        np.testing.assert_allclose(same(torch.cat([x, torch.rand(1, 1, 25, 88)], 1)).numpy(),
                                   load_crnn(tmp_path / "narrow.pt")[0](x).numpy(), atol=1e-4)


def test_unknown_version_and_format_refused(small, tmp_path):
    path = tmp_path / "m.pt"
    save_crnn(path, small)
    payload = torch.load(path, weights_only=False)
    payload["version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(PianoSSMError, match="version 99"):
        load_crnn(tmp_path / "v99.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(PianoSSMError, match="not an alignment CRNN"):
        load_crnn(tmp_path / "other.pt")
    with pytest.raises(PianoSSMError, match="not found"):
        load_crnn(tmp_path / "missing.pt")


def test_shipped_checkpoints_are_small_and_load():
    import os

    from pianossm.align.model import default_crnn_path, default_half_path, default_refine_path

    for path in (default_crnn_path(), default_refine_path(), default_half_path()):
        assert os.path.getsize(path) < 5 * 2 ** 20
        _, payload = load_crnn(path)
        assert "train_config" in payload and payload["step"] > 0


def test_loss_closed_form():
    logits = torch.zeros(1, 2, 100, 88)
    target = torch.zeros(1, 2, 100, 88)
    pairs = torch.tensor([[0, 10, 50, 55]])  # batch, key, input frame, aligned frame
    loss = alignment_loss(logits, target, pairs, radius=15)
    assert abs(float(loss["onset"]) - np.log(31)) < 1e-5
    assert abs(float(loss["total"]) - np.log(31) - np.log(2)) < 1e-5


def test_summarize_known_values():
    r = summarize(np.array([0.005, 0.02, 0.04, 0.2]))
    assert r["n"] == 4 and abs(r["mean_ms"] - 66.25) < 1e-9 and abs(r["median_ms"] - 30) < 1e-9
    assert (r["within_10ms"], r["within_25ms"], r["within_50ms"], r["within_100ms"]) == \
        (0.25, 0.5, 0.75, 0.75)
    assert "dtw" in format_table({"dtw": r})
    with pytest.raises(PianoSSMError):
        summarize(np.array([]))


def test_window_loss_targets_and_edges():
    from pianossm.align.train import window_onset_loss

    logits = torch.full((1, 100, 88), -5.0)
    logits[0, 55, 10] = 20.0  # confident and right
    pairs = torch.tensor([[0, 10, 50, 55],
                          [0, 20, 50, 90]])  # aligned onset outside the window: ignored
    assert float(window_onset_loss(logits, pairs, radius=15)) < 1e-6
    logits[0, 55, 10] = -5.0
    logits[0, 2, 30] = 20.0  # near the start: frames before 0 are not classes
    pairs = torch.tensor([[0, 30, 5, 2]])
    assert float(window_onset_loss(logits, pairs, radius=15)) < 1e-6
    none = torch.tensor([[0, 20, 50, 90]])
    assert float(window_onset_loss(logits, none, radius=15)) == 0.0


def test_soft_window_loss_targets_two_frames():
    from pianossm.align.train import window_onset_loss

    logits = torch.randn(1, 100, 88, generator=torch.Generator().manual_seed(0))
    # an onset 0.3 frames after frame 55 (key 10), and one 0.2 frames before frame 2
    # (key 30), and one 0.4 frames before frame 0 (key 40: frame -1 is no class)
    pairs = torch.tensor([[0, 10, 50, 55, 300], [0, 30, 5, 2, -200], [0, 40, 3, 0, -400]])
    got = window_onset_loss(logits, pairs, radius=15, soft=True)
    want = []
    for key, c, t, a, b_ in ((10, 50, 55, 0.7, (56, 0.3)), (30, 5, 2, 0.8, (1, 0.2)),
                             (40, 3, 0, 1.0, None)):
        frames = np.arange(c - 15, c + 16)
        ok = (frames >= 0) & (frames < 100)
        lp = torch.log_softmax(logits[0, frames[ok], key].double(), 0).numpy()
        pos = {int(f): i for i, f in enumerate(frames[ok])}
        loss = -a * lp[pos[t]] - (b_[1] * lp[pos[b_[0]]] if b_ else 0.0)
        want.append(loss)
    assert float(got) == pytest.approx(np.mean(want), rel=1e-5)
    # the hard loss ignores the fifth column; soft without it is an error
    assert float(window_onset_loss(logits, pairs, radius=15)) == pytest.approx(
        float(window_onset_loss(logits, pairs[:, :4], radius=15)))
    with pytest.raises(PianoSSMError, match="sub-frame"):
        window_onset_loss(logits, pairs[:, :4], radius=15, soft=True)
    # the minimum of the soft loss is the two-frame distribution: its centroid reads 0.3
    from pianossm.align.decode import _centroid

    lg = torch.full((1, 100, 88), -30.0)
    lg[0, 55, 10], lg[0, 56, 10] = np.log(0.7), np.log(0.3)
    assert _centroid(lg[0, :, 10].double().numpy(), 55) == pytest.approx(55.3, abs=1e-6)


def test_focal_window_loss_weights_each_note_by_its_miss_probability():
    """``focal=g``: each note's cross-entropy times ``(1 - p) ** g``, p the window softmax
    on its target frame(s) (both for whole-frame and sub-frame targets); 0 is the mean."""
    from pianossm.align.train import window_onset_loss

    logits = torch.randn(1, 100, 88, generator=torch.Generator().manual_seed(1))
    pairs = torch.tensor([[0, 10, 50, 55, 300], [0, 30, 40, 38, -200], [0, 40, 60, 60, 0]])
    for soft in (False, True):
        plain = window_onset_loss(logits, pairs, radius=15, soft=soft)
        assert float(window_onset_loss(logits, pairs, 15, soft, 0.0)) == float(plain)
        want = []
        for key, c, t, a in ((10, 50, 55, 0.3), (30, 40, 38, -0.2), (40, 60, 60, 0.0)):
            prob = torch.softmax(logits[0, c - 15:c + 16, key].double(), 0).numpy()
            i = t - c + 15
            share = abs(a) if soft else 0.0
            j = i + (1 if a >= 0 else -1)
            ce = -(1 - share) * np.log(prob[i]) - (share * np.log(prob[j]) if share else 0.0)
            p = prob[i] + (prob[j] if share else 0.0)
            want.append((1 - p) ** 2 * ce)
        got = window_onset_loss(logits, pairs, radius=15, soft=soft, focal=2.0)
        assert float(got) == pytest.approx(np.mean(want), rel=1e-5)
        assert float(got) < float(plain)


def test_decoder_follows_the_checkpoint_recipe(tmp_path):
    from pianossm.align.api import _model

    assert _model(None).subframe == "centroid"  # the shipped CRNN: sub-frame targets
    path = tmp_path / "soft.pt"
    save_crnn(path, AlignCRNN(CRNNConfig()), train_config={"soft_onsets": True})
    assert _model(str(path)).subframe == "centroid"
    path = tmp_path / "hard.pt"
    save_crnn(path, AlignCRNN(CRNNConfig()), train_config={"soft_onsets": False})
    assert _model(str(path)).subframe == "parabola"
