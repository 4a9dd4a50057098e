#!/usr/bin/env bats
# The AVX-512 kernel levels, natively, on emulated processors that have
# them: the image of tests/emu (lib/kernels/kernels_avx512.c compiled as the
# library compiles it, a reference, no operating system) booted in Bochs.
# test_kernels runs these levels only where the CPU has them, and
# test_kernels_avx512 checks the same source through portable intrinsics;
# this runs the real instructions on any x86-64 or other machine.
#
# Not part of `make test`: `make check-emu` builds the image (BF_EMU_ISO)
# and runs this file; scripts/deps-emu installs bochs, isolinux, syslinux
# and xorriso.
#
# Families: 1x AVX-512F/BW (Skylake-X), 2x AVX-512 VNNI (Tiger Lake).

load ../cli/helpers

BF_EMU_ISO=${BF_EMU_ISO:-$_bf_root/obj/emu/emu.iso}

# emu_run MODEL: the image's TAP in $output; fails, saying which, when the
# emulator cannot start and when the image stops before its end
emu_run() {
    [ -f "$BF_EMU_ISO" ] || fail "no emulator image at $BF_EMU_ISO: run 'make check-emu'"
    run --separate-stderr "$BATS_TEST_DIRNAME/run" "$BF_EMU_ISO" "$1"
    [ "$status" -ne 2 ] || fail "$stderr"
    [ "$status" -eq 0 ] || fail "the image stopped before its end on $1: $output"
    if grep -q '^not ok' <<<"$output"; then fail "$(grep '^not ok' <<<"$output")"; fi
}

@test "emu-10 avx512 level (AVX-512 F, BW): every case exact on an emulated Skylake-X" {
    emu_run corei7_skylake_x
    grep -qx '# cpu: avx512f 1 avx512bw 1 avx512vnni 0' <<<"$output"
    grep -qx '# emu-done: 158 passed, 0 failed' <<<"$output" || fail "$(tail -3 <<<"$output")"
    [ "$(grep -c '^ok .* - avx512 ' <<<"$output")" -eq 158 ]
}

@test "emu-20 avx512 and avx512vnni levels: every case exact on an emulated Tiger Lake" {
    emu_run tigerlake
    grep -qx '# cpu: avx512f 1 avx512bw 1 avx512vnni 1' <<<"$output"
    grep -qx '# emu-done: 316 passed, 0 failed' <<<"$output" || fail "$(tail -3 <<<"$output")"
    [ "$(grep -c '^ok .* - avx512vnni ' <<<"$output")" -eq 158 ]
}
