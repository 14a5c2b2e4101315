"""Packed group-wise INT8/INT4/INT2 experts: real packing, bounded error, exact `none`."""

from __future__ import annotations

import pytest
import torch

from inference.moe.errors import UnknownName
from inference.moe.storage.quant import (
    QUANT_SCHEMES,
    ExpertCodec,
    QuantError,
    dequantize,
    get_scheme,
    group_for,
    quantize,
    roundtrip,
    unpack_codes,
)


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_packed_storage_and_error_bound(bits: int) -> None:
    w = torch.randn(48, 128, generator=torch.Generator().manual_seed(bits))
    qt = quantize(w, bits, group_size=64)
    assert qt.packed.dtype == torch.uint8
    assert qt.packed.numel() == 48 * 128 * bits // 8  # codes really packed, not fake-quant
    assert qt.scale.dtype == torch.float16 and qt.scale.shape == (48, 2)
    assert qt.nbytes == 48 * 128 * bits // 8 + 48 * 2 * 4
    back = dequantize(qt)
    # asymmetric rounding: each value within half a step (+ fp16 rounding of the constants)
    step = qt.scale.float().repeat_interleave(64, dim=1)
    assert torch.all((back - w).abs() <= step / 2 + 1e-3)
    # group extremes are represented: min and max of every group come back closely
    g = w.reshape(48, 2, 64)
    assert torch.allclose(back.reshape(48, 2, 64).amin(2), g.amin(2), atol=1e-2)


def test_error_shrinks_with_more_bits() -> None:
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))
    errs = [float((roundtrip(w, b) - w).pow(2).mean()) for b in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2] > 0


def test_unpack_inverts_pack_for_every_code() -> None:
    for bits in (2, 4, 8):
        levels = 1 << bits
        codes = torch.arange(levels * 8).remainder(levels).to(torch.uint8).reshape(4, -1)
        w = codes.float()  # integer weights 0..levels-1 in every group: exact codes
        qt = quantize(w, bits, group_size=codes.shape[1])
        assert torch.equal(unpack_codes(qt.packed, bits), codes)


@pytest.mark.parametrize("bits,ratio", [(32, 1.0), (8, 0.3), (4, 0.25), (2, 0.2)])
def test_expert_codec_roundtrip_and_size(bits: int, ratio: float) -> None:
    hidden, dim = 128, 24  # dim like a MoEfied expert (1536 / 64)
    gen = torch.Generator().manual_seed(3)
    gate, up, down = (
        torch.randn(dim, hidden, generator=gen),
        torch.randn(dim, hidden, generator=gen),
        torch.randn(hidden, dim, generator=gen),
    )
    codec = ExpertCodec(hidden, dim, bits)
    blob = codec.encode(gate, up, down)
    assert blob.dtype == torch.uint8 and blob.numel() == codec.nbytes
    assert codec.nbytes <= ratio * 3 * hidden * dim * 4
    padded = torch.cat([blob, torch.zeros(100, dtype=torch.uint8)])  # store pads blobs to 4 KiB
    gate_up, down2 = codec.decode(padded)
    assert gate_up.shape == (2 * dim, hidden) and down2.shape == (hidden, dim)
    if bits == 32:  # `none` stays exact
        assert torch.equal(gate_up, torch.cat([gate, up])) and torch.equal(down2, down)
    else:  # one [3I, H] matrix: gate, up (groups of 32 along H) and down^T (4; 32 at 8 bits)
        assert torch.allclose(gate_up, roundtrip(torch.cat([gate, up]), bits, 32))
        assert torch.allclose(down2, roundtrip(down.T.contiguous(), bits, 32 if bits == 8 else 4).T)
        assert float((down2 - down).abs().max()) < (0.1 if bits == 8 else 1.5)


def test_schemes_registry() -> None:
    assert set(QUANT_SCHEMES) == {"none", "int8", "int4", "int4_int2"}
    mixed = get_scheme("int4_int2")
    assert mixed.codec(128, 24).bits == 4 and mixed.codec(128, 24, cold=True).bits == 2
    assert get_scheme("fate") is mixed  # the scheme's old name, kept for saved settings
    assert get_scheme("none").exact
    with pytest.raises(UnknownName, match="Unknown --quant 'int3'"):
        get_scheme("int3")


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(QuantError, match="not supported"):
        quantize(torch.randn(4, 64), bits=3)
    with pytest.raises(QuantError, match="groups"):
        group_for(6, bits=2, group_size=64)  # gcd 2: not a whole byte of 2-bit codes
    codec = ExpertCodec(64, 8, bits=4)
    with pytest.raises(QuantError, match="does not match"):
        codec.encode(torch.randn(8, 64), torch.randn(8, 64), torch.randn(8, 64))
    with pytest.raises(QuantError, match="expected"):
        codec.decode(torch.zeros(10, dtype=torch.uint8))
