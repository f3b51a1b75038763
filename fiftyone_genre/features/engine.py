"""How the feature CNNs run on a device: memory layout, precision, and optional compilation.

The same network runs 3-4x faster on a CPU with native bf16 (AVX512-BF16 or
AMX) when its activations are channels-last and its convolutions run in bf16
under autocast; on CUDA, channels-last with bf16/fp16 autocast feeds the
tensor cores. ``torch.compile`` (inductor, weights frozen) adds another ~25%
on CPU but costs a compile of tens of seconds per batch shape, so it is worth
it only for long runs and stays opt-in.

Two settings in ``FeaturesConfig`` pick all of it:

* ``engine``: ``auto`` (= ``channels_last``), ``nchw`` (plain eager, the
  reference), ``channels_last`` (eager, NHWC), ``compile`` (torch.compile +
  channels-last);
* ``precision``: ``auto`` (bf16 where the CPU has native bf16, bf16 on CUDA
  GPUs that support it, else fp16 on CUDA, else fp32), ``fp32``, ``bf16``,
  ``fp16`` (CUDA only).

Pooled features under bf16 stay within cosine 0.999 of fp32 per frame
(``tests/test_engine.py``); the cache key still includes the resolved engine
and precision so that entries of different precision are never mixed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("auto", "nchw", "channels_last", "compile")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (x86 AVX512-BF16 / AMX-BF16, Arm BF16).

    torch's own ``mkldnn bf16 supported`` flag is also true on plain AVX512
    CPUs, where oneDNN emulates bf16 and it is *slower* than fp32, so the
    instruction-set flags decide.
    """
    caps = getattr(torch.cpu, "get_capabilities", None)
    if caps is not None:
        try:
            c = caps()
            if c.get("avx512_bf16") or c.get("amx_bf16"):
                return True
        except Exception:  # noqa: BLE001 - fall back to /proc/cpuinfo
            pass
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _auto_precision(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


@dataclass(frozen=True)
class EngineChoice:
    """A resolved engine: no ``auto`` left, valid for ``device_type``."""

    engine: str  # nchw | channels_last | compile
    precision: str  # fp32 | bf16 | fp16
    device_type: str

    @property
    def channels_last(self) -> bool:
        return self.engine != "nchw"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _DTYPES.get(self.precision)

    def __str__(self) -> str:
        return f"{self.engine} {self.precision} on {self.device_type}"

    def wrap(self, module: nn.Module, max_batch: int, threads: int | None = None) -> InferenceEngine:
        """``module`` (eval mode, on the device) run the way this choice says.

        ``threads``: the torch threads each call will have (a CNN lane's share);
        a compiled module bakes its thread count into its kernels, so it must
        be known before compiling. None: the caller's current setting.
        """
        return InferenceEngine(module, self, max_batch, threads)


def resolve_engine(engine: str = "auto", precision: str = "auto", device: str | torch.device = "cpu") -> EngineChoice:
    """The ``engine`` / ``precision`` settings made concrete for ``device``.

    Raises ``ValueError`` naming the setting when a value is unknown or
    cannot run there (fp16 on a CPU).
    """
    if engine not in ENGINES:
        raise ValueError(f"features.engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"features.precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    dev = torch.device(device)
    if precision == "auto":
        precision = _auto_precision(dev)
    if precision == "fp16" and dev.type != "cuda":
        raise ValueError(
            f"features.precision fp16 needs a CUDA device (got {dev.type}); on CPU use bf16 or fp32 "
            f"(native bf16 here: {'yes' if cpu_has_native_bf16() else 'no'})"
        )
    if engine == "auto":
        engine = "channels_last"
    return EngineChoice(engine, precision, dev.type)


def _buckets(max_batch: int) -> list[int]:
    """Batch shapes a compiled engine is built for: powers of two, then ``max_batch``."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return [*sizes, max_batch]


class CompileGate:
    """Graphs compile alone: no compiled module runs while one is being compiled.

    Shared by every compiled engine of the process, because that is the
    scope of what it guards: dynamo traces with process-wide patches (FX
    replaces ``nn.Module.__call__`` while it traces), so a CNN lane calling
    a compiled module during another lane's compile fails. Calls hold the
    gate shared; a compile waits for running calls to end and holds new ones
    back. It only orders threads: which graph a call runs is left to the
    call itself (:meth:`InferenceEngine._compiled_call`).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._running = 0
        self._compiling = 0  # compiles waiting or in progress
        self._one_compile = threading.Lock()

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._compiling)
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    @contextmanager
    def compile(self) -> Iterator[None]:
        with self._cond:
            self._compiling += 1
            self._cond.wait_for(lambda: not self._running)
        try:
            with self._one_compile:
                yield
        finally:
            with self._cond:
                self._compiling -= 1
                self._cond.notify_all()


#: The one gate of the process (see :class:`CompileGate` for why it is process-wide).
COMPILE_GATE = CompileGate()


class InferenceEngine:
    """Calls a feature CNN under the chosen layout/precision; returns float32.

    A compiled module gets inputs padded to a few fixed batch sizes
    (:func:`_buckets`), so partial batches at the end of a video reuse one of
    a handful of graphs instead of recompiling for every length.
    ``compile_seconds`` is the time spent compiling so far (first call of each
    batch shape). Calls may come from several threads at once (CNN lanes):
    the first call of each shape compiles alone (:class:`CompileGate`), and a compiled
    module's kernels use ``threads`` OpenMP threads (inductor writes the count
    into the generated code), so every lane must run with that many.
    """

    def __init__(self, module: nn.Module, choice: EngineChoice, max_batch: int, threads: int | None = None):
        self.choice = choice
        self.module = module
        self.dim = getattr(module, "dim", None)
        self.max_batch = max(1, int(max_batch))
        self.compile_seconds = 0.0
        self._compiled_sizes: set[int] = set()
        if choice.channels_last:
            module.to(memory_format=torch.channels_last)
            if hasattr(module, "channels_last"):
                module.channels_last = True
        self._run = module
        if choice.engine == "compile":
            options: dict = {"freezing": True}
            if threads:
                options["cpp.threads"] = int(threads)  # also part of inductor's cache key
            self._run = torch.compile(module, dynamic=False, options=options)
            # Calls after a shape's first run only what is compiled: an input
            # that misses every graph runs eagerly instead of compiling beside
            # the other lanes. dynamo's run-only mode is set per call, on the
            # calling thread; the process-wide compile stance stays untouched.
            self._compiled_only = torch._dynamo.run(self._run)

    def _forward(self, x: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        dtype = self.choice.autocast_dtype
        with torch.inference_mode(), torch.autocast(self.choice.device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return (run or self._run)(x).float()

    def _compiled_call(self, x: torch.Tensor) -> torch.Tensor:
        """One compiled call on a bucket-sized batch (padded by repeating the last row).

        The input is always an inference tensor: dynamo guards on a tensor's
        dispatch keys, so a plain tensor in one call and an inference tensor
        in the next would need two graphs.
        """
        n = x.shape[0]
        size = next(b for b in _buckets(self.max_batch) if b >= n)
        with torch.inference_mode():
            if size > n:
                x = torch.cat([x, x[-1:].expand(size - n, *x.shape[1:])])
            elif not x.is_inference():
                x = x.clone()
        if size not in self._compiled_sizes:
            with COMPILE_GATE.compile():
                if size not in self._compiled_sizes:  # another lane may have compiled it meanwhile
                    t = time.perf_counter()
                    out = self._forward(x)
                    self.compile_seconds += time.perf_counter() - t
                    log.info("compiled %s for batch %d in %.1f s", type(self.module).__name__, size, time.perf_counter() - t)
                    self._compiled_sizes.add(size)
                    return out[:n]
        with COMPILE_GATE.call():
            return self._forward(x, self._compiled_only)[:n]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.choice.engine != "compile":
            return self._forward(x)
        parts = [self._compiled_call(x[i : i + self.max_batch]) for i in range(0, x.shape[0], self.max_batch)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def warm_up(self, example: torch.Tensor) -> float:
        """Compile the full-batch shape now (no-op when not compiling); returns the seconds spent.

        Smaller shapes compile when a partial batch first needs them.
        """
        if self.choice.engine == "compile":
            self(example[:1].expand(self.max_batch, *example.shape[1:]).contiguous())
        return self.compile_seconds
