"""A worker: imports the code under test (the module ``target``, or a module of a project or
package, see ``imports.py``) and runs it on the supervisor's commands.

Commands arrive and replies leave on two pipes (length-prefixed JSON). stdin is /dev/null and
stdout/stderr are the supervisor's capped pipes. A worker never measures its own time: the
supervisor reads this process's CPU clock from outside, so patching ``time`` gains nothing.
Self-checks here (builtins, threads, caches) catch the common ways code skews a comparison;
they run in the same process as the code under test, so they are a tripwire, not a wall.
"""

from __future__ import annotations

import builtins
import copy
import importlib
import importlib.util
import json
import os
import random
import sys
import threading
import time
import types

from . import fresh, imports, protocol, values

_EXIT_EXCEPTIONS = (SystemExit, KeyboardInterrupt, GeneratorExit)
_MUTABLE = (list, dict, set, bytearray)
KEPT_OUTPUTS = 200  # outputs of timed calls checked per sample


class Tampered(Exception):
    """The code under test did something that invalidates the measurement."""


class Raised:
    """An exception raised by the entry point: it is that call's output."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _native_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


class Integrity:
    """Snapshot of what the code under test must leave alone."""

    WATCHED = {
        time: (
            "perf_counter",
            "perf_counter_ns",
            "process_time",
            "process_time_ns",
            "thread_time",
            "monotonic",
            "time",
            "sleep",
        ),
        os: ("_exit", "write", "read", "fork", "kill"),
        sys: ("exit",),
        copy: ("deepcopy",),
    }

    def __init__(self) -> None:
        self.builtins = dict(vars(builtins))
        self.attrs = {(m, n): getattr(m, n) for m, names in self.WATCHED.items() for n in names}
        self.harness = {
            (m.__name__, k): v
            for m in (sys.modules[__name__], values, protocol, fresh)
            for k, v in vars(m).items()
            if callable(v)
        }
        self.classes = {
            (c.__name__, k): v for c in (Worker, Integrity, Raised) for k, v in vars(c).items()
        }

    def problems(self) -> list[str]:
        found = []
        current = vars(builtins)
        for name, obj in self.builtins.items():
            if current.get(name) is not obj:
                found.append(f"replaced builtins.{name}")
        found += [f"added builtins.{name}" for name in current.keys() - self.builtins.keys()]
        for (module, name), obj in self.attrs.items():
            if getattr(module, name, None) is not obj:
                found.append(f"patched {module.__name__}.{name}")
        for (module, name), obj in self.harness.items():
            if vars(sys.modules[module]).get(name) is not obj:
                found.append(f"patched the sandbox harness ({module.rsplit('.', 1)[-1]}.{name})")
        for (cls, name), obj in self.classes.items():
            if vars(globals()[cls]).get(name) is not obj:
                found.append(f"patched the sandbox harness ({cls}.{name})")
        return found


def _containers_of(module) -> dict[str, int]:  # noqa: ANN001
    """Sizes of the mutable state a function could cache results in between calls."""
    sizes: dict[str, int] = {}

    def note(name: str, obj: object) -> None:
        if isinstance(obj, _MUTABLE):
            sizes[name] = len(obj)
        elif hasattr(obj, "cache_info"):
            try:
                sizes[name + " (functools cache)"] = obj.cache_info().currsize
            except Exception:  # noqa: BLE001
                pass

    for name, obj in list(vars(module).items()):
        if name.startswith("__"):
            continue
        note(f"{module.__name__}.{name}", obj)
        for i, default in enumerate(getattr(obj, "__defaults__", None) or ()):
            note(f"{module.__name__}.{name} default #{i + 1}", default)
        for key, default in (getattr(obj, "__kwdefaults__", None) or {}).items():
            note(f"{module.__name__}.{name} default {key}", default)
        if isinstance(obj, type) or callable(obj):
            for attr, value in list(getattr(obj, "__dict__", {}).items()):
                if not attr.startswith("__"):
                    note(f"{module.__name__}.{name}.{attr}", value)
    return sizes


class Worker:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.pid = os.getpid()
        self.integrity = Integrity()
        self.module = None
        self.entry = None  # what a call calls: the target, or the workload's run()
        self.function = None  # the Python function under optimization (profile, coverage)
        self.cases: list[tuple[tuple, dict]] = []
        self.batch: list[tuple[tuple, dict, int]] = []
        self.kept: list = []
        self.kept_cases: list[int] = []
        self.references: list | None = None
        self.fresh: list = []  # per case: makes a fresh copy of its arguments (fresh.copier)
        self.state_after_load: dict[str, int] = {}
        self.threads_after_load = 0

    # -- plumbing -----------------------------------------------------------------------------

    def serve(self) -> None:
        while True:
            message = protocol.recv_blocking(self.cmd_fd)
            if message is None or message.get("cmd") == "exit":
                break
            handler = getattr(self, "cmd_" + message["cmd"])
            try:
                reply = handler(message)
            except Tampered as exc:
                reply = {"tampered": str(exc)}
            if os.getpid() != self.pid:  # a fork of the code under test must not answer
                os._exit(0)
            protocol.send(self.resp_fd, reply)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def check(self, when: str) -> None:
        problems = self.integrity.problems()
        if problems:
            raise Tampered(f"{', '.join(problems[:3])} ({when})")
        extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if extra:
            raise Tampered(f"left {len(extra)} thread(s) running {when}: {', '.join(extra[:3])}")
        native = _native_threads()
        if native > self.threads_after_load:
            raise Tampered(
                f"left {native - self.threads_after_load} native thread(s) running {when}"
            )

    def call(self, args: tuple, kwargs: dict) -> object:
        try:
            return self.entry(*args, **kwargs)
        except _EXIT_EXCEPTIONS as exc:
            raise Tampered(f"raised {type(exc).__name__}({exc}) inside the entry point") from None
        except BaseException as exc:  # noqa: BLE001 - an exception is this call's output
            return Raised(exc)

    @staticmethod
    def encode_output(out: object) -> list:
        if isinstance(out, Raised):
            return values.encode_exception(out.exc)
        return values.encode(out)

    # -- commands -----------------------------------------------------------------------------

    def cmd_load(self, message: dict) -> dict:
        cfg = self.config
        for name in message.get("preload", ()):  # the harness's own imports, before the
            try:  # environment's packages come ahead on sys.path
                importlib.import_module(name)
            except ImportError:
                pass
        try:
            failure = self._import_target(cfg)
        except _EXIT_EXCEPTIONS as exc:
            raise Tampered(f"raised {type(exc).__name__} while being imported") from None
        if failure:
            return failure
        random.seed(0)
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed(0)
        try:
            spec = importlib.util.spec_from_file_location("workload", cfg["workload_path"])
            workload = importlib.util.module_from_spec(spec)
            sys.modules["workload"] = workload
            spec.loader.exec_module(workload)
            has_cases, run = hasattr(workload, "cases"), getattr(workload, "run", None)
            if has_cases and callable(run):
                raise ValueError("the workload defines both cases() and run(); keep one")
            if callable(run):  # one call exercising the public API, compared by its result
                self.entry = run
                self.cases = [((), {})]
            elif has_cases:
                self.cases = [_normalise(case, i) for i, case in enumerate(workload.cases())]
            else:
                raise ValueError("the workload defines neither cases() nor run()")
        except _EXIT_EXCEPTIONS as exc:
            raise Tampered(f"raised {type(exc).__name__} while building the workload") from None
        except BaseException as exc:  # noqa: BLE001
            return _failure("workload", exc)
        if not self.cases:
            return {
                "error": {
                    "stage": "workload",
                    "type": "ValueError",
                    "message": "workload cases() returned no calls",
                }
            }
        self.fresh = [fresh.copier(case) for case in self.cases]
        self.threads_after_load = _native_threads()
        self.check("after import")
        self.state_after_load = _containers_of(self.module)
        digest = values.encode([list(c) for c in self.cases], budget=200_000)
        return {"ok": True, "n_cases": len(self.cases), "inputs": json.dumps(digest)[:100_000]}

    def _import_target(self, cfg: dict) -> dict | None:
        """Import the code under test and find its entry point; an error reply or ``None``."""
        imports.prepare_path(cfg.get("project_dir"), cfg.get("environment_dir"))
        name = cfg.get("module")
        if not name:
            sys.path.insert(0, cfg["code_dir"])
            try:
                self.module = __import__("target")
            except _EXIT_EXCEPTIONS:
                raise
            except BaseException as exc:  # noqa: BLE001
                return _failure("import", exc)
            entry = getattr(self.module, cfg["entry"], None)
            if entry is None or not callable(entry):
                return {
                    "error": {
                        "stage": "entry",
                        "type": "AttributeError",
                        "message": f"target defines no function {cfg['entry']!r}",
                    }
                }
            self.entry = self.function = entry
            return None
        staged = os.path.join(cfg["code_dir"], cfg["module_file"])
        try:
            self.module = imports.import_module(name, staged)
            self.entry, self.function = imports.resolve_entry(self.module, cfg["entry"])
        except imports.TargetError as exc:
            return {"error": {"stage": exc.stage, "type": "TargetError", "text": str(exc)}}
        except _EXIT_EXCEPTIONS:
            raise
        except BaseException as exc:  # noqa: BLE001
            failure = _failure("import", exc)
            failure["error"]["text"] = imports.describe_import_error(exc, name)
            return failure
        defined_in = self.function.__code__.co_filename
        if defined_in not in (staged, self.module.__file__):
            return {
                "error": {
                    "stage": "entry",
                    "type": "TargetError",
                    "text": f"{cfg['entry']} is defined in {defined_in}, not in {name}: "
                    "optimize it in its own module",
                }
            }
        return None

    def cmd_run_cases(self, message: dict) -> dict:
        import tracemalloc

        results, memory_error = [], False
        trace = message.get("trace_memory", False)
        if trace:
            tracemalloc.start()
        for make in self.fresh:
            a, k = make()
            if trace:
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
            out = self.call(a, k)
            peak = tracemalloc.get_traced_memory()[1] - before if trace else None
            if isinstance(out, Raised) and isinstance(out.exc, MemoryError):
                memory_error = True
            results.append(
                {
                    "out": self.encode_output(out),
                    "args_after": values.encode([list(a), k], budget=200_000),
                    "peak": peak,
                }
            )
            del out, a, k
        if trace:
            tracemalloc.stop()
        self.check("after the call")
        try:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except Exception:  # noqa: BLE001
            rss = None
        return {"results": results, "memory_error": memory_error, "max_rss": rss}

    def cmd_tests(self, message: dict) -> dict:
        from .testrun import run_tests

        cover = None
        if message.get("coverage") and isinstance(self.function, types.FunctionType):
            cover = (self.function.__code__.co_filename, self.config["entry"])
        result = run_tests(
            message["paths"], message["rootdir"], cover, self.config.get("environment_dir")
        )
        self.check("after the tests")
        return result

    def cmd_prepare(self, message: dict) -> dict:
        """Fresh inputs for ``loops`` passes over the cases. Only a random subset of the
        outputs (at most ``KEPT_OUTPUTS``) is kept for checking; the rest are dropped as they
        come, as a caller would, so retaining them does not change the memory behaviour."""
        if self.references is None:
            self.references = [self.encode_output(self.call(*make())) for make in self.fresh]
        n, total = len(self.cases), len(self.cases) * int(message["loops"])
        rng = random.Random(total + len(self.kept))
        keep = (
            set(range(total))
            if total <= KEPT_OUTPUTS
            else set(rng.sample(range(total), KEPT_OUTPUTS))
        )
        self.kept_cases, batch = [], []
        for j in range(total):
            args, kwargs = self.fresh[j % n]()
            slot = -1
            if j in keep:
                slot = len(self.kept_cases)
                self.kept_cases.append(j % n)
            batch.append((args, kwargs, slot))
        self.batch = batch
        self.kept = [None] * len(self.kept_cases)
        if message.get("warm"):
            self.call(*self.fresh[0]())
        return {"ok": True}

    def cmd_go(self, message: dict) -> dict:
        kept, entry = self.kept, self.entry
        for args, kwargs, slot in self.batch:
            try:
                out = entry(*args, **kwargs)
            except _EXIT_EXCEPTIONS as exc:
                raise Tampered(f"raised {type(exc).__name__} inside the entry point") from None
            except Exception as exc:  # noqa: BLE001
                out = Raised(exc)
            if slot >= 0:
                kept[slot] = out
        return {"ok": True}

    def cmd_verify(self, message: dict) -> dict:
        self.check("after timing")
        seen: dict[int, int] = {}
        for out, case in zip(self.kept, self.kept_cases, strict=True):
            if isinstance(out, _MUTABLE) and len(out) or _is_array(out) and out.size:
                if id(out) in seen:
                    raise Tampered(
                        f"returned the same {type(out).__name__} object for repeated "
                        f"calls (case {case}): results are cached across calls"
                    )
                seen[id(out)] = case
        for out, case in zip(self.kept, self.kept_cases, strict=True):
            diff = values.difference(self.references[case], self.encode_output(out))
            if diff:
                return {"drift": f"case {case}: {diff} on a repeated call"}
        grown = [
            f"{name} grew from {size} to {now}"
            for name, now in _containers_of(self.module).items()
            if now > (size := self.state_after_load.get(name, 0))
        ]
        if grown:
            raise Tampered(
                f"keeps results between calls ({'; '.join(grown[:2])}): caching "
                "across calls makes repeated timing meaningless"
            )
        self.kept, self.kept_cases, self.batch = [], [], []
        return {"ok": True}

    def cmd_profile(self, message: dict) -> dict:
        from .profile import profile_calls

        result = profile_calls(self, float(message.get("min_s", 0.0)))
        self.check("after profiling")
        return result


def _is_array(obj: object) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _normalise(case: object, index: int) -> tuple[tuple, dict]:
    if (
        isinstance(case, tuple)
        and len(case) == 2
        and isinstance(case[0], tuple)
        and isinstance(case[1], dict)
    ):
        return case[0], case[1]
    if isinstance(case, tuple):
        return case, {}
    raise TypeError(
        f"case {index} must be an args tuple or an (args, kwargs) pair, not {type(case).__name__}"
    )


def _failure(stage: str, exc: BaseException) -> dict:
    import traceback  # on failure only (see imports.py: a worker's start is paid per round)

    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "error": {
            "stage": stage,
            "type": type(exc).__name__,
            "message": str(exc)[:1000],
            "traceback": "".join(tb)[-3000:],
        }
    }


def source_line(filename: str, lineno: int) -> str:
    import linecache

    return linecache.getline(filename, lineno).rstrip()


def main() -> None:
    cmd_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
    config = protocol.recv_blocking(cmd_fd)
    sys.argv = ["target"]
    worker = Worker(config)
    worker.cmd_fd, worker.resp_fd = cmd_fd, resp_fd
    worker.serve()
