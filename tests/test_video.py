"""Video files: frames read with PyAV, classified like the same pictures given as files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlcore.core.errors import OptionError, TLCoreError
from tlcore.ship.video import frames, write_video


def _colour_frames(n: int, size=(64, 48)) -> list[np.ndarray]:
    """Frame i is a flat grey of level 10 * i: which frame came back is readable from its pixels."""
    return [np.full((size[1], size[0], 3), 10 * i + 5, dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm", ".mkv"])
def test_frames_every_n_with_index_and_time(tmp_path, suffix):
    clip = write_video(tmp_path / f"clip{suffix}", _colour_frames(12), fps=15)
    got = list(frames(clip, every=5))
    assert [i for i, _, _ in got] == [0, 5, 10]
    assert [round(t * 15) for _, t, _ in got] == [0, 5, 10]
    for i, _, im in got:
        assert im.size == (64, 48) and im.mode == "RGB"
        assert abs(float(np.asarray(im).mean()) - (10 * i + 5)) < 6


def test_bad_videos_say_what_is_wrong(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    with pytest.raises(TLCoreError, match="Cannot read the video"):
        list(frames(junk))
    clip = write_video(tmp_path / "ok.mp4", _colour_frames(2))
    with pytest.raises(OptionError, match="every"):
        list(frames(clip, every=0))


def _cli(*args, env_home):
    env = dict(os.environ, TLCORE_HOME=str(env_home))
    proc = subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    return proc


def test_predict_a_clip_agrees_with_its_images(shared_run, tmp_path):
    """`tlcore predict RUN clip.mp4` on a clip of the test images = predicting the files (>= 95%)."""
    files = sorted(Path(shared_run.data, "test").glob("*/*.png"))
    pictures = [np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BILINEAR)) for f in files]
    clip = write_video(tmp_path / "clip.mp4", pictures, fps=15)
    as_files = _cli("predict", shared_run.run_dir, *map(str, files), "--json", env_home=shared_run.home)
    as_video = _cli("predict", shared_run.run_dir, str(clip), "--json", env_home=shared_run.home)
    assert as_files.returncode == 0 and as_video.returncode == 0, as_video.stderr[-2000:]
    images, frames_out = json.loads(as_files.stdout), json.loads(as_video.stdout)
    assert [r["image"] for r in frames_out] == [f"{clip}#frame={i}" for i in range(len(files))]
    assert frames_out[3]["time"] == pytest.approx(3 / 15)
    same = sum(a["top"][0]["label"] == b["top"][0]["label"] for a, b in zip(images, frames_out))
    assert same / len(files) >= 0.95
    # a real check: the run does tell the test images apart (not one label for everything)
    assert len({r["top"][0]["label"] for r in frames_out}) > 1

    every = _cli("predict", shared_run.run_dir, str(clip), "--every", "4", "--top-k", "1", "--json",
                 env_home=shared_run.home)
    sampled = json.loads(every.stdout)
    assert [r["image"].rsplit("=", 1)[1] for r in sampled] == [str(i) for i in range(0, len(files), 4)]
    assert all(len(r["top"]) == 1 for r in sampled)
    bad = _cli("predict", shared_run.run_dir, str(clip), "--every", "0", "--json", env_home=shared_run.home)
    assert bad.returncode != 0 and "--every" in bad.stderr and "Traceback" not in bad.stderr
