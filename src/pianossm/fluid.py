"""Rendering MIDI with FluidSynth and a sampled-piano SoundFont (reference audio, data).

We call the ``fluidsynth`` program (Debian package ``fluidsynth``) rather than a Python
binding: it is the maintained front end, needs no compiled extension, and renders faster
than real time.  SoundFonts: Debian's ``fluid-soundfont-gm`` (FluidR3, MIT) and
``musescore-general-soundfont-small`` (MuseScore General), or any path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

from pianossm.errors import PianoSSMError

__all__ = ["SOUNDFONTS", "find_soundfont", "render_fluidsynth"]

#: Known SoundFonts by short name, in order of preference.
SOUNDFONTS = {
    "fluidr3": ["/usr/share/sounds/sf2/FluidR3_GM.sf2"],
    "musescore": ["/usr/share/sounds/sf3/MuseScore_General.sf3",
                  "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"],
}


def find_soundfont(name_or_path: str = "fluidr3") -> str:
    """Resolve a SoundFont short name (``fluidr3``, ``musescore``) or a path.

    Parameters
    ----------
    name_or_path : str
        Short name or file path.

    Returns
    -------
    str
        An existing ``.sf2``/``.sf3`` path.
    """
    if os.path.isfile(name_or_path):
        return name_or_path
    for path in SOUNDFONTS.get(name_or_path.lower(), []):
        if os.path.isfile(path):
            return path
    raise PianoSSMError(
        f"SoundFont {name_or_path!r} not found; allowed: a file path or one of "
        f"{sorted(SOUNDFONTS)} (install Debian's fluid-soundfont-gm / "
        f"musescore-general-soundfont-small)")


def render_fluidsynth(midi_path: str | os.PathLike[str], sample_rate: int,
                      soundfont: str = "fluidr3", gain: float = 0.5,
                      reverb: bool = False) -> np.ndarray:
    """Render a MIDI file to mono float32 audio with FluidSynth.

    Parameters
    ----------
    midi_path : str or PathLike
        The ``.mid`` file.
    sample_rate : int
        Output rate in Hz.
    soundfont : str
        Short name or path (see :func:`find_soundfont`).
    gain : float
        FluidSynth master gain.
    reverb : bool
        Keep FluidSynth's reverb and chorus (off by default: a dry piano).

    Returns
    -------
    np.ndarray
        ``(n,)`` float32, the left and right channels averaged; starts at MIDI time 0.
    """
    import soundfile as sf

    exe = shutil.which("fluidsynth")
    if exe is None:
        raise PianoSSMError("the 'fluidsynth' program is not installed (Debian: apt-get install "
                            "fluidsynth); only building datasets needs it, not rendering")
    sf_path = find_soundfont(soundfont)
    if not os.path.isfile(midi_path):
        raise PianoSSMError(f"MIDI file not found: {os.fspath(midi_path)!r}")
    with tempfile.TemporaryDirectory(prefix="pianossm-fluid-") as tmp:
        out = os.path.join(tmp, "out.wav")
        flags = [] if reverb else ["-R", "0", "-C", "0"]
        cmd = [exe, "-ni", "-q", *flags, "-g", str(gain), "-r", str(int(sample_rate)),
               "-F", out, sf_path, os.fspath(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not os.path.isfile(out):
            raise PianoSSMError(f"fluidsynth failed on {os.fspath(midi_path)!r}: "
                                f"{proc.stderr.strip()[:200]}")
        audio, _ = sf.read(out, dtype="float32", always_2d=True)
    return audio.mean(axis=1).astype(np.float32)
