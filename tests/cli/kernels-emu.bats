#!/usr/bin/env bats
# The AVX-512 kernel levels, natively, on emulated processors that have
# them: the image of tests/emu (lib/kernels/kernels_avx512.c compiled as the
# library compiles it, a reference, no operating system) booted in Bochs.
# test_kernels runs these levels only where the CPU has them, and
# test_kernels_avx512 checks the same source through portable intrinsics;
# this runs the real instructions on any x86-64 or other machine.
#
# Families: 1x AVX-512F/BW (Skylake-X), 2x AVX-512 VNNI (Tiger Lake).

load helpers

# emu_run MODEL: the image's TAP in $output; skips where the tools are not
emu_run() {
    [ -f "${BF_EMU_ISO:-}" ] || skip "no emulator image: scripts/deps installs bochs, isolinux and xorriso"
    run "$BATS_TEST_DIRNAME/../emu/run" "$BF_EMU_ISO" "$1"
    [ "$status" -eq 0 ] || fail "the image stopped before its end on $1: $output"
    if grep -q '^not ok' <<<"$output"; then fail "$(grep '^not ok' <<<"$output")"; fi
}

@test "emu-10 avx512 level (AVX-512 F, BW): every case exact on an emulated Skylake-X" {
    emu_run corei7_skylake_x
    grep -qx '# cpu: avx512f 1 avx512bw 1 avx512vnni 0' <<<"$output"
    grep -qx '# emu-done: 170 passed, 0 failed' <<<"$output" || fail "$(tail -3 <<<"$output")"
    [ "$(grep -c '^ok .* - avx512 ' <<<"$output")" -eq 170 ]
}

@test "emu-20 avx512 and avx512vnni levels: every case exact on an emulated Tiger Lake" {
    emu_run tigerlake
    grep -qx '# cpu: avx512f 1 avx512bw 1 avx512vnni 1' <<<"$output"
    grep -qx '# emu-done: 340 passed, 0 failed' <<<"$output" || fail "$(tail -3 <<<"$output")"
    [ "$(grep -c '^ok .* - avx512vnni ' <<<"$output")" -eq 170 ]
}
