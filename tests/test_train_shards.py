"""Batch slices on threads (``--threads N`` on the compiled CPU path): the same step."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from pianossm.scan_compiled import HAVE_NUMBA
from pianossm.train import Trainer
from pianossm.train.shards import batch_slices, keep_freed_memory
from tests.test_train import _cfg, _tone_cache

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _tone_cache(tmp_path_factory.mktemp("tones"))


def test_batch_slices_cover_the_batch_in_order() -> None:
    assert batch_slices(5, 2) == [slice(0, 2), slice(2, 5)]
    assert batch_slices(2, 4) == [slice(0, 1), slice(1, 2)]
    assert batch_slices(7, 1) == [slice(0, 7)]
    for batch in range(1, 12):
        for parts in range(1, 6):
            got = batch_slices(batch, parts)
            assert [i for s in got for i in range(s.start, s.stop)] == list(range(batch))
            assert all(s.stop > s.start for s in got)


@pytest.mark.parametrize("batch,threads", [(2, 2), (3, 2), (3, 3)])
def test_sliced_step_equals_one_thread_step_in_float64(cache_dir: str, tmp_path: Path,
                                                       batch: int, threads: int) -> None:
    kw = {"loss": "mssl", "env_weight": 0.5, "flux_weight": 2.0, "attack_weight": 1.5,
          "pitch_weight": 3.0, "alias_reg": 0.1,
          "alias_rates": "8000", "batch": batch, "grad_clip": 0.5}
    one = Trainer(_cfg(cache_dir, tmp_path / "one", threads=1, **kw), progress=False)
    many = Trainer(_cfg(cache_dir, tmp_path / "many", threads=threads, **kw), progress=False)
    assert one.slices == 1 and many.slices == min(threads, batch)
    for t in (one, many):
        t.model.double()
    many.model.load_state_dict(one.model.state_dict())
    for _ in range(2):
        rec_one, rec_many = one.train_step(), many.train_step()
        assert torch.get_num_threads() == threads  # restored after the sliced step
        for key in ("loss", "envelope", "flux", "attack", "pitch", "mag", "logmag",
                    "alias_penalty"):
            assert rec_many[key] == pytest.approx(rec_one[key], rel=1e-10)
        # the step's (clipped) gradients, still on the parameters: equal up to rounding
        # (Adam's first, sign-like updates would amplify rounding in near-zero entries)
        for (name, a), b in zip(one.model.named_parameters(), many.model.parameters()):
            scale = float(a.grad.abs().max())
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-9 * scale, msg=name)
        many.model.load_state_dict(one.model.state_dict())
    torch.set_num_threads(1)


def test_keep_freed_memory_applies_on_linux() -> None:
    import sys

    assert keep_freed_memory() is sys.platform.startswith("linux")


_ARENAS = r"""
import ctypes, os, sys, tempfile, threading
import numpy as np
if sys.argv[1] == "limit":
    from pianossm.train.shards import keep_freed_memory
    keep_freed_memory()
def work():
    a = np.ones(5_000_000)  # 40 MB, allocated on this thread
    a += 1
t = threading.Thread(target=work)
t.start()
t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
path = os.path.join(tempfile.mkdtemp(), "info.xml")
f = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(f))
libc.fclose(ctypes.c_void_p(f))
print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_memory_keeps_threads_in_one_arena() -> None:
    """A worker thread's allocation makes a second malloc arena unless the limit is set."""
    import subprocess

    def arenas(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _ARENAS, mode], capture_output=True,
                             text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1])

    assert arenas("default") >= 2  # glibc: the thread got an arena of its own
    assert arenas("limit") == 1
