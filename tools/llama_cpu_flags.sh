#!/bin/sh
# Print the CMake flags llama.cpp is built with, chosen from this CPU's features.
#
#   sh tools/llama_cpu_flags.sh [CPUINFO]     (CPUINFO defaults to /proc/cpuinfo)
#
# Never a native build (GGML_NATIVE=OFF) and never AMX: a native build turns AMX
# tiles on where the CPU reports them, and they crash where a sandbox does not
# grant them. AVX-512 (with its VBMI, VNNI and BF16 extensions where the CPU has
# them) when the CPU has every part llama.cpp compiles AVX-512 code with (F, CD,
# VL, DQ, BW); else the portable AVX2 build; a CPU without AVX2, FMA and F16C
# gets the SSE build. The flags are picked when the package is built: a venv
# moved to another machine keeps what it was built for.
cpuinfo=${1:-/proc/cpuinfo}
features=" $(grep -m1 '^flags' "$cpuinfo" 2>/dev/null | cut -d: -f2) "
has() {
	for feature in "$@"; do
		case "$features" in *" $feature "*) ;; *) return 1 ;; esac
	done
}
flags="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
if has avx avx2 fma f16c; then
	flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
	has bmi2 && flags="$flags -DGGML_BMI2=ON"
	has avx_vnni && flags="$flags -DGGML_AVX_VNNI=ON"
	if has avx512f avx512cd avx512vl avx512dq avx512bw; then
		flags="$flags -DGGML_AVX512=ON"
		has avx512vbmi && flags="$flags -DGGML_AVX512_VBMI=ON"
		has avx512_vnni && flags="$flags -DGGML_AVX512_VNNI=ON"
		has avx512_bf16 && flags="$flags -DGGML_AVX512_BF16=ON"
	fi
else
	flags="$flags -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
fi
echo "$flags"
