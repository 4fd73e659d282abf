"""The built-in example: Pillow's ``ImageStat.Stat._getextrema``, the function Florath & Kiraly
optimised with ChatGPT-4. Their early-exit idea went into Pillow 10.2 and Pillow 13 made
``extrema`` a cached property, so the example targets Pillow 10.1.0, the last release with the
original loop. It is installed on first use with pip into an environment directory of its own
under the data directory (never into the app's environment); the session's ``environment``
points there, so the sandbox imports Pillow 10.1.0 ahead of the app's own Pillow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.services.context import Context, get_context
from app.services.errors import ServiceError

PILLOW_VERSION = "10.1.0"
PILLOW_TARGET = "PIL.ImageStat:Stat._getextrema"
INSTALL_TIMEOUT_S = 600

#: Realistic images made at run time in the sandbox (with Pillow 10.1.0 itself): grey (L) and
#: colour (RGB) in several sizes, natural-looking histograms (a gradient under noise, a
#: photo-like blend with a narrow range), and a few with few distinct values (posterised,
#: flat with specks, two-tone). Each case is (Stat,): ``args[0]`` is the instance.
PILLOW_WORKLOAD = '''\
"""Images for ImageStat.Stat._getextrema: each case is one Stat over a realistic histogram."""

from PIL import Image, ImageOps, ImageStat


def _natural(size, sigma, lo, hi):
    """A smooth gradient under Gaussian noise, squeezed into [lo, hi] like an exposure."""
    w, h = size
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, sigma)
    img = Image.blend(gradient, noise, 0.45)
    return img.point(lambda v: lo + v * (hi - lo) // 255)


def _rgb(size):
    r = _natural(size, 40, 10, 245)
    g = _natural(size, 25, 30, 200).rotate(90, expand=False)
    b = _natural(size, 60, 0, 255).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return Image.merge("RGB", (r, g, b))


def cases():
    images = [
        _natural((64, 64), 30, 0, 255),
        _natural((320, 240), 20, 60, 190),  # an underexposed, low-contrast shot
        _natural((800, 600), 50, 5, 250),
        _rgb((128, 96)),
        _rgb((640, 480)),
        ImageOps.posterize(_rgb((200, 150)), 2),  # 4 levels per band
        Image.new("L", (100, 100), 128),  # flat grey ...
        Image.new("RGB", (50, 40), (0, 0, 0)),  # ... and black
    ]
    specks = Image.new("L", (120, 80), 90)
    for x, y, v in ((3, 4, 12), (60, 40, 250), (119, 79, 91)):
        specks.putpixel((x, y), v)
    images.append(specks)
    two_tone = Image.new("RGB", (64, 64), (20, 200, 60))
    two_tone.paste((230, 10, 130), (0, 0, 32, 64))
    images.append(two_tone)
    return [((ImageStat.Stat(img),), {}) for img in images]
'''

ProgressFn = Callable[[str, dict], None]


class ExampleUnavailable(ServiceError):
    """The example's environment could not be installed (no network, pip failed)."""


@dataclass(frozen=True)
class Example:
    title: str
    target: str
    environment: Path
    workload_source: str
    notes: str


def environments_dir(ctx: Context) -> Path:
    return Path(ctx.settings.data_dir) / "envs"


def _installed_version(env: Path) -> str | None:
    for meta in env.glob("[Pp]illow-*.dist-info/METADATA"):
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return None


def pillow_environment(
    *, on_progress: ProgressFn | None = None, ctx: Context | None = None
) -> Path:
    """The directory with Pillow 10.1.0 (``pip install --target``), installed on first use;
    concurrent first uses do not clash (each installs into a fresh folder, then renames)."""
    c = get_context(ctx)
    env = environments_dir(c) / f"pillow-{PILLOW_VERSION}"
    if _installed_version(env) == PILLOW_VERSION:
        return env
    say = on_progress or (lambda stage, info: None)
    say(
        "install",
        {"message": f"installing Pillow {PILLOW_VERSION} into {env} (first use, once)"},
    )
    tmp = env.with_name(f".{env.name}-{uuid.uuid4().hex[:8]}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--target",
        str(tmp),
        f"pillow=={PILLOW_VERSION}",
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExampleUnavailable(f"pip could not install Pillow {PILLOW_VERSION}: {exc}") from exc
    if done.returncode != 0 or _installed_version(tmp) != PILLOW_VERSION:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ExampleUnavailable(
            f"pip could not install Pillow {PILLOW_VERSION} (is the package index reachable?): "
            + " | ".join(tail)
        )
    if _installed_version(env) != PILLOW_VERSION:
        shutil.rmtree(env, ignore_errors=True)
        try:
            tmp.rename(env)
        except OSError:  # another process won the race: its copy is as good
            pass
    shutil.rmtree(tmp, ignore_errors=True)
    say("install", {"message": f"Pillow {PILLOW_VERSION} is ready in {env}"})
    return env


def pillow_example(*, on_progress: ProgressFn | None = None, ctx: Context | None = None) -> Example:
    """The example's inputs, with Pillow 10.1.0 installed (first use) into its environment."""
    env = pillow_environment(on_progress=on_progress, ctx=ctx)
    return Example(
        title=f"Pillow {PILLOW_VERSION}: ImageStat.Stat._getextrema (Florath & Kiraly)",
        target=PILLOW_TARGET,
        environment=env,
        workload_source=PILLOW_WORKLOAD,
        notes=(
            "The paper's case: per band, the min and max of a 256-bin histogram. Try the "
            "paper's idea (two early-exit loops, one from each end) and then beat it."
        ),
    )
