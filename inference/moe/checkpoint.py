"""Reading Hugging Face safetensors checkpoints tensor by tensor.

Nothing is loaded whole: non-expert weights are read once for the compute device and each
expert is read once to build the slow tier, so peak memory stays near one expert.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.moe.config import MoEConfig
from inference.moe.errors import CheckpointError

if TYPE_CHECKING:
    import torch


class Checkpoint:
    """A folder with `model.safetensors` or a sharded `model.safetensors.index.json`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._where: dict[str, Path] = {}
        self._handles: dict[Path, Any] = {}
        index = self.folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise CheckpointError(f"{index} is not a valid safetensors index ({exc}).") from exc
            self._where = {k: self.folder / v for k, v in weight_map.items()}
        else:
            # predictor_*.safetensors are fitted predictor maps cached next to the weights
            # (predict.fitted_predictor): not weights, and they must not change the fingerprint
            files = sorted(
                p for p in self.folder.glob("*.safetensors") if not p.name.startswith("predictor_")
            )
            if not files:
                raise CheckpointError(f"{self.folder} holds no .safetensors weights.")
            for path in files:
                for key in self._open(path).keys():
                    self._where[key] = path

    def _open(self, path: Path) -> Any:
        handle = self._handles.get(path)
        if handle is None:
            from safetensors import safe_open

            try:
                handle = safe_open(str(path), framework="pt")
            except Exception as exc:  # safetensors raises its own error types
                raise CheckpointError(
                    f"{path} is not a readable safetensors file ({exc})."
                ) from exc
            self._handles[path] = handle
        return handle

    def has(self, key: str) -> bool:
        return key in self._where

    def keys(self) -> list[str]:
        return list(self._where)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._open(self._where[key]).get_slice(key).get_shape())

    def get(self, key: str) -> torch.Tensor:
        path = self._where.get(key)
        if path is None:
            raise CheckpointError(f"The checkpoint in {self.folder} is missing tensor {key}.")
        try:
            return self._open(path).get_tensor(key)
        except Exception as exc:
            raise CheckpointError(f"Tensor {key} in {path} could not be read ({exc}).") from exc

    def get_shaped(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        if not self.has(key):
            raise CheckpointError(f"The checkpoint in {self.folder} is missing tensor {key}.")
        got = self.shape(key)
        if got != shape:
            raise CheckpointError(
                f"Tensor {key} in {self.folder} has shape {list(got)}, expected {list(shape)}."
            )
        return self.get(key)

    # -- experts -------------------------------------------------------------------
    def expert_layout(self, cfg: MoEConfig, layer: int) -> str:
        """'split' (one tensor per expert, the usual disk format) or 'fused' (transformers 5.x)."""
        gate_up, _ = cfg.spec.fused_keys(layer)
        return "fused" if self.has(gate_up) else "split"

    def expert(self, cfg: MoEConfig, layer: int, expert: int) -> tuple[torch.Tensor, ...]:
        """(gate [I,H], up [I,H], down [H,I]) of one expert, shapes checked."""
        h, i = cfg.hidden_size, cfg.expert_dim
        if self.expert_layout(cfg, layer) == "fused":
            gu_key, down_key = cfg.spec.fused_keys(layer)
            self._check(gu_key, (cfg.num_experts, 2 * i, h))
            self._check(down_key, (cfg.num_experts, h, i))
            gu = self._open(self._where[gu_key]).get_slice(gu_key)[expert]
            down = self._open(self._where[down_key]).get_slice(down_key)[expert]
            return gu[:i], gu[i:], down
        gate_key, up_key, down_key = cfg.spec.expert_keys(layer, expert)
        return (
            self.get_shaped(gate_key, (i, h)),
            self.get_shaped(up_key, (i, h)),
            self.get_shaped(down_key, (h, i)),
        )

    def _check(self, key: str, shape: tuple[int, ...]) -> None:
        if not self.has(key):
            raise CheckpointError(f"The checkpoint in {self.folder} is missing tensor {key}.")
        if self.shape(key) != shape:
            raise CheckpointError(
                f"Tensor {key} in {self.folder} has shape {list(self.shape(key))}, "
                f"expected {list(shape)}."
            )

    def validate_experts(self, cfg: MoEConfig) -> None:
        """Check every expert tensor exists with the right shape before anything is written."""
        h, i = cfg.hidden_size, cfg.expert_dim
        for layer in cfg.moe_layers:
            self._check(cfg.spec.router_key(layer), (cfg.num_experts, h))
            if self.expert_layout(cfg, layer) == "fused":
                gu_key, down_key = cfg.spec.fused_keys(layer)
                self._check(gu_key, (cfg.num_experts, 2 * i, h))
                self._check(down_key, (cfg.num_experts, h, i))
                continue
            for e in range(cfg.num_experts):
                gate_key, up_key, down_key = cfg.spec.expert_keys(layer, e)
                self._check(gate_key, (i, h))
                self._check(up_key, (i, h))
                self._check(down_key, (h, i))

    def fingerprint(self) -> str:
        """Changes when any weight file changes (size or mtime): keys the derived expert file."""
        import hashlib

        h = hashlib.sha256()
        for path in sorted(set(self._where.values())):
            st = path.stat()
            h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]

    def close(self) -> None:
        self._handles.clear()  # safe_open handles unmap when dropped

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
