"""Seeded bad (and good) inputs for :mod:`fuzz_cli` and the fuzz tests: MIDI bytes written
by hand (so running status, SMPTE division, wrong chunk lengths and type 2 are possible),
audio files and checkpoints, each drawn from a numpy ``Generator``."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["MIDI_KINDS", "audio_case", "checkpoint_case", "make_fixtures", "midi_bytes",
           "midi_case"]

MIDI_KINDS = ["valid", "out_of_range", "vel0_and_orphans", "zero_length", "controllers",
              "drums", "many_tracks", "chord", "tempo_1", "tempo_max", "tempo_1e9", "smpte",
              "type2", "running_status", "mutated", "truncated", "chunk_length", "not_midi",
              "empty", "folder", "missing"]


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, bytes]], running: bool = False) -> bytes:
    """``(absolute tick, message bytes)`` pairs as an ``MTrk`` chunk."""
    body, now, status = b"", 0, None
    for tick, msg in sorted(events, key=lambda e: e[0]):
        data = msg
        if running and msg[0] < 0xF0 and msg[0] == status:
            data = msg[1:]
        status = msg[0] if msg[0] < 0xF0 else None
        body += _vlq(tick - now) + data
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def _notes(rng: np.random.Generator, n: int, keys: tuple[int, int], ticks: int,
           channel: int = 0, vel: tuple[int, int] = (1, 128), length: tuple[int, int] = (1, 96),
           ) -> list[tuple[int, bytes]]:
    ev = []
    for _ in range(n):
        t, k = int(rng.integers(0, ticks)), int(rng.integers(*keys))
        v, d = int(rng.integers(*vel)), int(rng.integers(*length))
        ev += [(t, bytes([0x90 | channel, k, v])), (t + d, bytes([0x80 | channel, k, 0]))]
    return ev


def _tempo(us: int, tick: int = 0) -> tuple[int, bytes]:
    return tick, b"\xff\x51\x03" + us.to_bytes(3, "big")


def midi_bytes(rng: np.random.Generator, kind: str) -> bytes:
    """A MIDI file of ``kind`` (one of :data:`MIDI_KINDS` up to ``chunk_length``)."""
    fmt, division, running = 1, int(rng.choice([96, 480])), False
    tracks = [[_tempo(int(rng.integers(300_000, 1_000_000)))]]
    tracks[0] += _notes(rng, int(rng.integers(1, 30)), (21, 109), 2 * division)
    if kind == "out_of_range":
        tracks[0] += _notes(rng, 20, (0, 128), 2 * division)
    elif kind == "vel0_and_orphans":
        tracks[0] += _notes(rng, 10, (21, 109), 2 * division, vel=(0, 1))
        tracks[0] += [(int(rng.integers(0, division)), bytes([0x80, int(rng.integers(21, 109)),
                                                               64])) for _ in range(10)]
    elif kind == "zero_length":
        tracks[0] += _notes(rng, 10, (21, 109), division, length=(0, 1))
    elif kind == "controllers":
        tracks[0] = [tracks[0][0]] + [(int(rng.integers(0, division)), bytes(
            [0xB0, int(rng.choice([64, 7, 10, 1])), int(rng.integers(0, 128))]))
            for _ in range(20)]
    elif kind == "drums":
        tracks[0] = [tracks[0][0]] + _notes(rng, 20, (35, 82), division, channel=9)
    elif kind == "many_tracks":
        tracks += [_notes(rng, 2, (21, 109), division, channel=int(rng.integers(0, 16)))
                   for _ in range(int(rng.integers(100, 400)))]
    elif kind == "chord":
        tracks[0] += _notes(rng, int(rng.integers(1000, 4000)), (21, 109), 8,
                            length=(1, division))
    elif kind == "tempo_1":
        tracks[0][0] = _tempo(1)
    elif kind == "tempo_max":  # 16.8 s per beat: keep the ticks few
        tracks[0] = [_tempo(16_777_215)] + _notes(rng, 5, (21, 109), 16, length=(1, 8))
    elif kind == "tempo_1e9":  # one tick per beat, 16.8 s per tick: ~1e9 s of audio
        division = 1
        tracks[0] = [_tempo(16_777_215)] + [(0, b"\x90\x3c\x40"), (60_000_000, b"\x80\x3c\x00")]
    elif kind == "smpte":
        division = (256 - int(rng.choice([24, 25, 29, 30]))) << 8 | int(rng.choice([4, 40, 80]))
    elif kind == "type2":
        fmt = 2
        tracks += [_notes(rng, 5, (21, 109), division)]
    elif kind == "running_status":
        running = True
    if kind not in ("many_tracks", "type2") and rng.random() < 0.2:
        fmt = 0
    if fmt == 0:
        tracks = [sum(tracks, [])]
    body = b"".join(_track(t, running) for t in tracks)
    data = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division) + body
    if kind == "chunk_length":
        at = data.index(b"MTrk") + 4
        wrong = int(rng.choice([0, 1, len(data), 2**31 - 1, int(rng.integers(0, 2**32))]))
        data = data[:at] + struct.pack(">I", wrong) + data[at + 4:]
    return data


def midi_case(rng: np.random.Generator, path: Path, short: bool = False) -> Path:
    """Write one generated MIDI case at ``path`` (or make it a folder, or leave it absent)."""
    kind = str(rng.choice(MIDI_KINDS[:3] if short else MIDI_KINDS))
    if kind == "folder":
        path.mkdir()
        return path
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
        return path
    if kind == "not_midi":
        choices = [rng.bytes(int(rng.integers(1, 4000))), b"RIFF\x24\x00\x00\x00WAVEfmt ",
                   b"hello, this is not MIDI\n" * 10, b"MThd"]
        path.write_bytes(choices[int(rng.integers(0, len(choices)))])
        return path
    data = bytearray(midi_bytes(rng, "valid" if kind in ("mutated", "truncated") else kind))
    if kind == "mutated":
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
    elif kind == "truncated":
        cuts = [i for i in range(len(data)) if data[i:i + 4] in (b"MThd", b"MTrk")]
        cuts += [len(data) - 1, int(rng.integers(1, len(data)))]
        cut = int(rng.choice(cuts))
        data = data[:cut + int(rng.integers(0, 9))]
    path.write_bytes(bytes(data))
    return path


def audio_case(rng: np.random.Generator, path: Path) -> Path:
    """A good or bad recording at ``path``."""
    import soundfile as sf

    kind = str(rng.choice(["ok", "nan", "inf", "silence", "one_sample", "8k", "96k",
                           "stereo", "corrupt", "truncated", "empty", "missing", "flac_as_wav",
                           "loud"]))
    rate = {"8k": 8000, "96k": 96000}.get(kind, 16000)
    t = np.arange(int(rate * float(rng.uniform(0.5, 2.0)))) / rate
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)
    if kind in ("nan", "inf"):
        audio[int(rng.integers(0, len(audio)))] = np.nan if kind == "nan" else np.inf
    elif kind == "silence":
        audio[:] = 0
    elif kind == "one_sample":
        audio = audio[:1]
    elif kind == "loud":
        audio *= 100
    if kind == "stereo":
        audio = np.stack([audio, audio[::-1]], axis=1)
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
        return path
    sf.write(str(path), audio, rate, subtype="FLOAT" if kind in ("nan", "inf", "loud")
             else "PCM_16", format="FLAC" if kind == "flac_as_wav" else "WAV")
    if kind in ("corrupt", "truncated"):
        data = bytearray(path.read_bytes())
        if kind == "corrupt":
            for _ in range(int(rng.integers(1, 50))):
                data[int(rng.integers(0, min(len(data), 64)))] = int(rng.integers(0, 256))
        else:
            data = data[:int(rng.integers(0, len(data)))]
        path.write_bytes(bytes(data))
    return path


def checkpoint_case(rng: np.random.Generator, path: Path, fx: dict, training: bool = False,
                    ) -> Path:
    """A good or bad checkpoint at ``path``."""
    import torch

    good = fx["train_ckpt"] if training else fx["model"]
    kind = str(rng.choice(["ok", "truncated", "mutated", "nan", "foreign_tensor",
                           "foreign_dict", "version", "other_size", "no_training", "empty",
                           "random", "missing", "state_dict", "folder"]))
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
        return path
    data = good.read_bytes()
    if kind == "truncated":
        data = data[:int(rng.integers(0, len(data)))]
    elif kind == "mutated":
        data = bytearray(data)
        for _ in range(int(rng.integers(1, 30))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        data = bytes(data)
    elif kind == "empty":
        data = b""
    elif kind == "random":
        data = rng.bytes(int(rng.integers(1, 5000)))
    elif kind == "other_size":
        data = (fx["train_ckpt_other"] if training else fx["model_other"]).read_bytes()
    elif kind == "no_training":
        data = fx["model"].read_bytes()
    if kind in ("nan", "foreign_tensor", "foreign_dict", "version", "state_dict"):
        payload = torch.load(good, weights_only=True)
        if kind == "nan":
            key = sorted(payload["model"])[int(rng.integers(0, len(payload["model"])))]
            if payload["model"][key].is_floating_point():
                payload["model"][key] = payload["model"][key].clone().fill_(float("nan"))
        elif kind == "foreign_tensor":
            payload = torch.randn(3, 4)
        elif kind == "foreign_dict":
            payload = {"weights": torch.randn(5), "epoch": 3}
        elif kind == "version":
            payload["version"] = int(rng.choice([0, 2, 99]))
        else:
            payload = payload["model"]
        torch.save(payload, path)
        return path
    path.write_bytes(data)
    return path


TRAIN_ARGS = ["--batch", "2", "--crop-seconds", "0.2", "--warmup-steps", "1",
              "--restart-steps", "50", "--val-every", "100", "--ckpt-every", "100",
              "--log-every", "1", "--val-seconds", "1.0", "--val-max-windows", "1",
              "--seed", "3", "--steps", "3"]


def make_fixtures(root: Path) -> dict:
    """Tiny models, a tone cache, training checkpoints and a short MIDI file under ``root``."""
    import pretty_midi
    import soundfile as sf
    import torch

    from pianossm.checkpoint import save_checkpoint
    from pianossm.config import preset
    from pianossm.data.cache import Item, build_cache
    from pianossm.model import PianoSSM
    from pianossm.train import TrainConfig, Trainer

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    save_checkpoint(root / "model.pt", PianoSSM(preset("S", d_state=4, preset="custom")))
    save_checkpoint(root / "other.pt", PianoSSM(preset("S", d_state=8, preset="custom")))
    items = []
    for k, split in enumerate(["train", "train", "validation"]):
        pm, inst = pretty_midi.PrettyMIDI(), pretty_midi.Instrument(0)
        for t in np.arange(0.1, 2.5, 0.3):
            inst.notes.append(pretty_midi.Note(int(rng.integers(40, 110)),
                                               int(rng.integers(40, 90)), t, t + 0.25))
        pm.instruments.append(inst)
        pm.write(str(root / f"t{k}.mid"))
        sf.write(str(root / f"t{k}.wav"), rng.normal(0, 0.05, 3 * 16000), 16000)
        items.append(Item(f"t{k}", str(root / f"t{k}.mid"), str(root / f"t{k}.wav"), split))
    build_cache(items, root / "cache", 16000, progress=False)
    ckpts = {}
    for name, d_state in (("train_ckpt", 4), ("train_ckpt_other", 6)):
        kw = dict(zip([a[2:].replace("-", "_") for a in TRAIN_ARGS[::2]], TRAIN_ARGS[1::2]))
        types = {f.name: f.type for f in __import__("dataclasses").fields(TrainConfig)}
        kw = {k: (float(v) if types[k] == "float" else int(v)) for k, v in kw.items()}
        cfg = TrainConfig(data=str(root / "cache"), out=str(root / name), d_state=d_state,
                          **{**kw, "steps": 2})
        trainer = Trainer(cfg, progress=False)
        trainer.run()
        ckpts[name] = root / name / "last.pt"
    return {"model": root / "model.pt", "model_other": root / "other.pt",
            "midi": root / "t2.mid", "cache": root / "cache", "eval_name": "t2",
            "train_args": ["--d-state", "4", *TRAIN_ARGS], **ckpts}
