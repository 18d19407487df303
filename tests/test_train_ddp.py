"""``torchrun`` (DistributedDataParallel, gloo on CPU) takes the steps one process takes.

The test launches this file under ``python -m torch.distributed.run --standalone`` (a free
port is picked by the rendezvous) with two CPU ranks; each rank runs ``pianossm train``
with its ``save_checkpoint`` wrapped to record which rank wrote what.

Both runs are in float64 (``torch.set_default_dtype``).  In float32 the two agree to float
rounding in the loss (~3e-6 relative) but not to 1e-5 in the parameters, and neither do
one process's batch of 2 and its two batches of 1: MSSL's log term weights each spectral
bin by ``1 / |S|``, so bins just above its 1e-5 floor turn rounding into ~0.5 % gradient
noise, and Adam's first steps (``lr * sign(g)``) flip the smallest components.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The run, as TrainConfig fields; ``batch`` is per rank (the single process gets 2x).
SETTINGS: dict[str, object] = {
    "d_state": 4, "steps": 3, "finetune_steps": 0, "crop_seconds": 0.2, "loss": "mssl",
    "lr": 3e-3, "warmup_steps": 1, "restart_steps": 10, "val_every": 100,
    "val_max_windows": 2, "val_seconds": 1.0, "ckpt_every": 1, "log_every": 1, "seed": 5,
    "threads": 1, "alias_reg": 1.0, "alias_rates": "4000"}


def _worker(data: str, out: str, spy_dir: str) -> int:
    """One rank: ``pianossm train`` with checkpoint writes recorded per rank."""
    import torch

    import pianossm.checkpoint as ck
    from pianossm.cli import main

    original, rank = ck.save_checkpoint, os.environ["RANK"]

    def spy(path: str, model: object, **extra: object) -> None:
        with open(os.path.join(spy_dir, f"rank{rank}.txt"), "a") as f:
            f.write(os.path.basename(path) + "\n")
        original(path, model, **extra)  # type: ignore[arg-type]

    ck.save_checkpoint = spy  # type: ignore[assignment]
    torch.set_default_dtype(torch.float64)
    args = ["train", "--data", data, "--out", out, "--batch", "1", "-q"]
    for name, value in SETTINGS.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return main(args)


if __name__ == "__main__":
    sys.exit(_worker(*sys.argv[1:4]))

import pytest
import torch

from pianossm.checkpoint import load_checkpoint
from pianossm.train import TrainConfig, Trainer
from test_train import _tone_cache


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _tone_cache(tmp_path_factory.mktemp("tones_ddp"))


def test_two_ranks_match_one_process_and_only_rank0_writes(cache_dir: str,
                                                           tmp_path: Path) -> None:
    out, spy = tmp_path / "ddp", tmp_path / "spy"
    spy.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", __file__, cache_dir, str(out), str(spy)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert time.perf_counter() - t0 < 120

    torch.set_default_dtype(torch.float64)
    try:
        one = Trainer(TrainConfig(data=cache_dir, out=str(tmp_path / "one"), batch=2,
                                  **SETTINGS), progress=False)  # type: ignore[arg-type]
        hist = one.run()
    finally:
        torch.set_default_dtype(torch.float32)
    assert one.model.heads.weight.dtype == torch.float64

    ddp = load_checkpoint(out / "last.pt")
    assert ddp["step"] == 3
    for name, value in one.model.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-5, atol=1e-5,
                                   msg=lambda m, n=name: f"{n}: {m}")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in lines if x["kind"] == "train"]
    assert [x["step"] for x in train] == [1, 2, 3]  # once each: only rank 0 logs
    for x, r in zip(train, hist):  # logged losses are averaged over the ranks
        assert x["loss"] == pytest.approx(r["loss"], rel=1e-5)
        assert x["aliased"] == r["aliased"]
    (val,) = [x for x in lines if x["kind"] == "val"]  # windows shared out between ranks
    assert val["val_mssl"] == pytest.approx(hist[-1]["val_mssl"], rel=1e-5)

    assert not (spy / "rank1.txt").exists()
    assert (spy / "rank0.txt").read_text().split() == ["last.pt", "last.pt", "best.pt",
                                                        "last.pt"]
