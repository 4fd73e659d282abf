"""A C filter in front of the Python eval callback, so unwanted graph nodes cost no Python call.

llama.cpp asks the eval callback about every node of every graph (about 940 per token for
SmolLM2) before computing it. Answering in Python costs ~0.6 µs a node, ~12% of a decode step
of the default model; answered in C it is free, and Python only runs for the few tensors it
reads. The filter matches "<base>-<layer>" names against a small set of bases and a layer mask
(names such as "ffn_moe_weights_norm-3 (reshaped)" never match).

The shared library is compiled once with the system C compiler (present wherever llama-cpp-python
was built from source) into the cache directory; without a compiler the engine falls back to the
pure-Python callback.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

MAX_BASES = 16
BASE_LEN = 48
MAX_LAYERS = 4096

C_SOURCE = r"""
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef bool (*eval_cb)(void * tensor, bool ask, void * user_data);

struct perfloop_filter {
    size_t name_offset;
    int n_bases;
    char bases[16][48];
    unsigned char layer_on[4096];
    eval_cb on_data;
};

bool perfloop_filter_cb(void * tensor, bool ask, void * user_data) {
    struct perfloop_filter * f = (struct perfloop_filter *) user_data;
    if (!ask) {
        return f->on_data(tensor, ask, NULL);
    }
    const char * name = (const char *) tensor + f->name_offset;
    const char * dash = strrchr(name, '-');
    if (dash == NULL || dash[1] < '0' || dash[1] > '9') {
        return false;
    }
    char * end = NULL;
    long layer = strtol(dash + 1, &end, 10);
    if (*end != '\0' || layer < 0 || layer >= 4096 || !f->layer_on[layer]) {
        return false;
    }
    size_t len = (size_t) (dash - name);
    for (int i = 0; i < f->n_bases; i++) {
        if (strlen(f->bases[i]) == len && memcmp(f->bases[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}
"""

EvalCallback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p)


class FilterState(ctypes.Structure):
    _fields_ = [
        ("name_offset", ctypes.c_size_t),
        ("n_bases", ctypes.c_int),
        ("bases", (ctypes.c_char * BASE_LEN) * MAX_BASES),
        ("layer_on", ctypes.c_ubyte * MAX_LAYERS),
        ("on_data", EvalCallback),
    ]

    def set_names(self, names: list[bytes]) -> None:
        """Ask for exactly the "<base>-<layer>" names given (and their cross product)."""
        bases: list[bytes] = []
        ctypes.memset(ctypes.addressof(self) + FilterState.layer_on.offset, 0, MAX_LAYERS)
        for name in names:
            base, _, layer = name.rpartition(b"-")
            if base not in bases:
                bases.append(base)
            self.layer_on[int(layer)] = 1
        if len(bases) > MAX_BASES or any(len(b) >= BASE_LEN for b in bases):
            raise ValueError("too many or too long tensor names for the graph filter")
        for i, base in enumerate(bases):
            self.bases[i].value = base
        self.n_bases = len(bases)


def _compile(directory: Path) -> Path | None:
    digest = hashlib.sha256(C_SOURCE.encode()).hexdigest()[:12]
    target = directory / f"graph_filter-{digest}.so"
    if target.is_file():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        source = Path(tmp) / "graph_filter.c"
        source.write_text(C_SOURCE)
        built = Path(tmp) / target.name
        result = subprocess.run(
            [compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(source)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            return None
        built.replace(target)
    return target


def load_filter(directory: Path) -> ctypes._CFuncPtr | None:
    """The C entry point ``perfloop_filter_cb`` (build it if needed), or None without a compiler."""
    path = _compile(directory)
    if path is None:
        return None
    try:
        fn = ctypes.CDLL(str(path)).perfloop_filter_cb
    except OSError:
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p]
    fn.restype = ctypes.c_bool
    return fn
