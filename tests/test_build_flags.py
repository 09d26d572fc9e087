"""The llama.cpp build flags follow the CPU's features, never native, never AMX."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "llama_cpu_flags.sh"
NO_AMX = ("-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF")
AVX512 = "avx512f avx512cd avx512vl avx512dq avx512bw"


def flags(tmp_path: Path, features: str) -> list[str]:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu sse sse2 {features}\n\nprocessor\t: 1\n")
    done = subprocess.run(
        ["sh", str(SCRIPT), str(cpuinfo)], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@pytest.mark.parametrize(
    ("features", "on", "off"),
    [
        # Every AVX-512 part and its extensions, and AMX, which stays off.
        (
            f"avx avx2 fma f16c bmi2 {AVX512} avx512vbmi avx512_vnni avx512_bf16 "
            "amx_tile amx_int8 amx_bf16",
            [
                "-DGGML_AVX2=ON",
                "-DGGML_AVX512=ON",
                "-DGGML_AVX512_VBMI=ON",
                "-DGGML_AVX512_BF16=ON",
            ],
            [],
        ),
        # No AVX-512: the portable AVX2 build.
        ("avx avx2 fma f16c bmi2", ["-DGGML_AVX2=ON", "-DGGML_FMA=ON"], ["-DGGML_AVX512=ON"]),
        # AVX-512F alone is not enough: llama.cpp compiles with CD, VL, DQ and BW too.
        ("avx avx2 fma f16c avx512f", ["-DGGML_AVX2=ON"], ["-DGGML_AVX512=ON"]),
        # No AVX2: the SSE build.
        ("sse4_2", ["-DGGML_AVX=OFF", "-DGGML_AVX2=OFF"], ["-DGGML_AVX2=ON"]),
    ],
)
def test_the_flags_follow_the_cpu(
    tmp_path: Path, features: str, on: list[str], off: list[str]
) -> None:
    chosen = flags(tmp_path, features)
    for flag in (*NO_AMX, *on):
        assert flag in chosen, flag
    for flag in off:
        assert flag not in chosen, flag
    assert not any(f.startswith("-DGGML_AMX") and f.endswith("=ON") for f in chosen)


def test_no_cpuinfo_means_the_sse_build(tmp_path: Path) -> None:
    chosen = flags(tmp_path, "")
    assert "-DGGML_AVX2=OFF" in chosen and "-DGGML_NATIVE=OFF" in chosen
