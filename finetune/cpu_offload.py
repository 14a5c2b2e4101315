"""ZeRO-Offload pieces for a CUDA run (imported only when a GPU is present).

LoRA master weights, gradient accumulators and AdamW moments live in pinned CPU memory.
Each LoRA gradient is copied to the host on a side stream the moment backward finishes it
(post-accumulate-grad hook) and its GPU copy is dropped, so gradient transfer overlaps the
rest of backward and no gradient stays on the device. The AdamW step runs on the CPU and
the updated weights go back with non-blocking copies that the next forward waits on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

MIN_OFFLOAD_BYTES = 256 * 1024


class CpuOffloadAdamW:
    def __init__(self, params: list[Any], lr: float) -> None:
        import torch

        self.params = list(params)
        self.master = [p.detach().float().cpu().pin_memory() for p in self.params]
        self.staging = [torch.empty_like(m).pin_memory() for m in self.master]
        for m in self.master:
            m.grad = torch.zeros_like(m).pin_memory()
        self.inner = torch.optim.AdamW(self.master, lr=lr, weight_decay=0.0, foreach=False)
        self.param_groups = self.inner.param_groups
        self.stream = torch.cuda.Stream()
        self._pending: list[int] = []
        for idx, p in enumerate(self.params):
            p.register_post_accumulate_grad_hook(lambda p, idx=idx: self._offload(idx, p))

    def _offload(self, idx: int, p: Any) -> None:
        import torch

        grad = p.grad
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            self.staging[idx].copy_(grad, non_blocking=True)
        grad.record_stream(self.stream)
        p.grad = None  # the device copy is freed as soon as the transfer is done
        self._pending.append(idx)

    def collect(self) -> None:
        """After each micro-batch's backward: fold staged gradients into the accumulators."""
        self.stream.synchronize()
        for idx in self._pending:
            self.master[idx].grad.add_(self.staging[idx])
        self._pending.clear()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for m in self.master:
            m.grad.zero_()

    def step(self) -> None:
        self.collect()
        self.inner.step()
        for p, m in zip(self.params, self.master):
            p.data.copy_(m, non_blocking=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "master": [m.detach().clone() for m in self.master],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        for p, m, saved in zip(self.params, self.master, state["master"]):
            m.data.copy_(saved)
            p.data.copy_(m)


_KEEP = threading.local()


@contextlib.contextmanager
def keep_on_device() -> Iterator[None]:
    """Inside: saved activations stay on the GPU (layers --max-gpu-gb leaves un-recomputed)."""
    before = getattr(_KEEP, "on", False)
    _KEEP.on = True
    try:
        yield
    finally:
        _KEEP.on = before


@contextlib.contextmanager
def pinned_activation_hooks(params: Iterable[Any]) -> Iterator[None]:
    """Keep saved activations in pinned host memory; parameters stay on the device.

    The device-to-host copies run on a side stream, so the forward does not wait for them;
    a tensor coming back first waits for that stream."""
    import torch

    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    side = torch.cuda.Stream()

    def pack(t: Any) -> Any:
        if (
            t.device.type != "cuda"
            or getattr(_KEEP, "on", False)
            or t.numel() * t.element_size() < MIN_OFFLOAD_BYTES
            or t.untyped_storage().data_ptr() in param_ptrs
        ):
            return t
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            host.copy_(t, non_blocking=True)
        t.record_stream(side)  # the GPU copy is not reused before the transfer is done
        return (t.device, host)

    def unpack(x: Any) -> Any:
        if isinstance(x, tuple):
            device, host = x
            torch.cuda.current_stream().wait_stream(side)
            return host.to(device, non_blocking=True)
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
