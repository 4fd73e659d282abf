"""Install wheels by unpacking them (the sandbox image has no pip): ``SRC_DIR DEST_DIR``.

Used inside ``docker build``; enough for wheels without install-time scripts (numpy,
line_profiler, pytest and its dependencies).
"""

import os
import shutil
import sys
import zipfile


def install(wheel: str, dest: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    for name in os.listdir(dest):
        data = os.path.join(dest, name)
        if name.endswith(".data") and os.path.isdir(data):
            for scheme in ("purelib", "platlib"):
                src = os.path.join(data, scheme)
                if os.path.isdir(src):
                    shutil.copytree(src, dest, dirs_exist_ok=True)
            shutil.rmtree(data)


if __name__ == "__main__":
    src, dest = sys.argv[1], sys.argv[2]
    os.makedirs(dest, exist_ok=True)
    for wheel in sorted(os.listdir(src)):
        if wheel.endswith(".whl"):
            install(os.path.join(src, wheel), dest)
            print("installed", wheel)
