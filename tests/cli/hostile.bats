#!/usr/bin/env bats
# Corrupt and hostile streams (bf-stream(5) READER LIMITS, bitforge(7)
# CONVENTIONS): every case that tests/tools/bf-mkbad.c makes (`bf-mkbad
# list`), given to every program in HOSTILE_PROGS through a pipe and as a
# file, must end with exit status 1, exactly one line on stderr that starts
# with "PROG: " and matches the case's expected message (`bf-mkbad why
# CASE`), nothing on stdout, within HOSTILE_MAX_SECONDS and (when GNU time
# is there to measure it) HOSTILE_MAX_RSS_KB of peak resident memory.

load helpers

# The programs that read a stream: one command line each, with {} where the
# input goes ("-" when it comes through a pipe, a path when it is a file).
# A new program is covered by adding its line here.
HOSTILE_PROGS=(
    'bf-eval {}'
    'bf-init --like {}'
    # Programs that need a model or a whole data set cannot be entries: they
    # refuse bf-mkbad's valid streams (kind "data", no splits) that hostile-02
    # requires every entry to accept, and bf-quantize and bf-dequant stop at
    # the kind before the defect.  They meet every case through hostile_each
    # (helpers.bash; as_model turns a case into a model stream) in their own
    # files: bf-quantize.bats (also bf-eval --data), bf-dequant.bats,
    # bf-ste-train.bats, bf-muon.bats.
)
# Programs (by name) that may have written part of a stream to stdout before
# they met the defect: their stdout must then lack a valid trailer, so that
# bf-eval rejects it.  Every other program must write nothing.
HOSTILE_STREAMING=''
HOSTILE_MAX_SECONDS=2
HOSTILE_MAX_RSS_KB=$((256 * 1024))   # ASan's shadow memory included

# GNU time, to measure peak memory (Debian package 'time'); optional
GNU_TIME=
if [[ -x /usr/bin/time ]] && /usr/bin/time -q -f %M -o /dev/null true 2>/dev/null; then
    GNU_TIME=/usr/bin/time
fi

# hostile_check MODE: runs every program on every case (MODE pipe or file)
# and fails once at the end, listing every violation.
hostile_check() {
    local mode=$1 kase entry prog w st t0 t1 us why input msg n=0
    local -a words argv reason fails=()
    while IFS=$'\t' read -r kase why; do
        n=$((n + 1))
        bf-mkbad "$kase" >"$T/case.bf" || fail "bf-mkbad $kase failed"
        for entry in "${HOSTILE_PROGS[@]}"; do
            read -ra words <<<"$entry"
            prog=${words[0]}
            input=$T/case.bf
            [[ $mode == pipe ]] && input=-
            # GNU time reports the largest resident size of timeout and its child
            argv=(timeout -k 1 5)
            [[ -n $GNU_TIME ]] && argv=("$GNU_TIME" -q -f %M -o "$T/rss" "${argv[@]}")
            for w in "${words[@]}"; do
                [[ $w == '{}' ]] && w=$input
                argv+=("$w")
            done
            usec t0
            if [[ $mode == pipe ]]; then
                st=0
                cat "$T/case.bf" | "${argv[@]}" >"$T/out" 2>"$T/err" || st=$?
            else
                st=0
                "${argv[@]}" </dev/null >"$T/out" 2>"$T/err" || st=$?
            fi
            usec t1
            us=$((t1 - t0))
            reason=()
            [[ $st -eq 1 ]] || reason+=("exit status $st")
            w=$(one_line_reason "$T/err" "$prog")
            [[ -z $w ]] || reason+=("stderr: $w")
            IFS= read -r -d '' msg <"$T/err" || true
            [[ $msg =~ $why ]] || reason+=("message does not match /$why/")
            if [[ -s $T/out ]]; then
                if [[ " $HOSTILE_STREAMING " != *" $prog "* ]]; then
                    reason+=("$(stat -c %s "$T/out") bytes on stdout")
                elif bf-eval "$T/out" >/dev/null 2>&1; then
                    reason+=("its partial output is a valid stream")
                fi
            fi
            ((us < HOSTILE_MAX_SECONDS * 1000000)) || reason+=("took $((us / 1000)) ms")
            if [[ -n $GNU_TIME ]]; then
                read -r w <"$T/rss" || true
                [[ $w =~ ^[0-9]+$ ]] && ((w < HOSTILE_MAX_RSS_KB)) || reason+=("peak memory '$w' KiB")
            fi
            if ((${#reason[@]})); then
                fails+=("$kase ($mode) '$entry': $(IFS=';'; echo "${reason[*]}") -- stderr: $(head -c 300 "$T/err" | tr '\n' '|')")
            fi
        done
    done < <(bf-mkbad why)
    ((n >= 30)) || fail "bf-mkbad why listed $n cases"
    if ((${#fails[@]})); then
        printf '# %s\n' "${fails[@]}" >&2
        fail "${#fails[@]} violation(s) in $mode mode"
    fi
}

@test "hostile-01 bf-mkbad lists every case below, each once and with an expected message" {
    run -0 bf-mkbad list
    local c
    for c in empty text bad-magic trunc-stream-header trunc-tensor-header trunc-payload trunc-before-trailer \
        c1-stream-header c1-tensor-header giant-str32 giant-bin32 giant-map32 giant-array32 deep-nesting \
        shape-overflow nbytes-mismatch too-many-dims unknown-dtype duplicate-name tq2-code3 tq1-243 \
        flipped-bit wrong-count after-trailer terabyte name-256 name-bad-utf8 ext-fixext ext-ext8 \
        payload-not-bin; do
        assert_line "$c"
    done
    # no duplicates, and every case has an expected message
    [[ $(printf '%s\n' "${lines[@]}" | sort | uniq -d) == "" ]]
    diff <(printf '%s\n' "${lines[@]}") <(bf-mkbad why | cut -f 1)
    [[ $(bf-mkbad why | awk -F '\t' '$2 == ""' | wc -l) -eq 0 ]]
    [[ $(bf-mkbad why duplicate-name) == "duplicate tensor name 'x'" ]]
}

@test "hostile-02 the well-formed streams of both builders pass every program" {
    local kase entry w mode
    local -a words argv
    for kase in $(bf-mkbad list-valid); do
        bf-mkbad "$kase" >"$T/ok.bf"
        for mode in pipe file; do
            for entry in "${HOSTILE_PROGS[@]}"; do
                read -ra words <<<"$entry"
                argv=()
                for w in "${words[@]}"; do
                    [[ $w == '{}' ]] && { [[ $mode == pipe ]] && w=- || w=$T/ok.bf; }
                    argv+=("$w")
                done
                status=0
                if [[ $mode == pipe ]]; then
                    bf-mkbad "$kase" | "${argv[@]}" >"$T/out" 2>"$T/err" || status=$?
                else
                    "${argv[@]}" >"$T/out" 2>"$T/err" || status=$?
                fi
                [[ $status -eq 0 && ! -s $T/err ]] ||
                    fail "$kase ($mode) '$entry': status $status, stderr: $(<"$T/err")"
            done
        done
    done
}

@test "hostile-03 every case through a pipe: exit 1, one line, no output, fast" {
    quick hostile_check pipe
}

@test "hostile-04 every case as a file: exit 1, one line, no output, fast" {
    quick hostile_check file
}

@test "hostile-05 a payload declared as 1 TiB on a pipe fails fast, without a large allocation" {
    [[ -n $GNU_TIME ]] || skip "GNU time (Debian package 'time') is needed to measure the peak memory"
    local st=0 t0 t1 kb
    bf-mkbad terabyte >tb.bf
    usec t0
    cat tb.bf | "$GNU_TIME" -q -f %M -o "$T/rss" bf-eval >/dev/null 2>"$T/err" || st=$?
    usec t1
    [[ $st -eq 1 ]] || fail "exit status $st: $(<"$T/err")"
    assert_one_error bf-eval
    [[ $(<"$T/err") == *"payload of 'huge' ends after 1048576 of 1099511627776 bytes"* ]]
    read -r kb <"$T/rss"
    # the 1 MiB that arrives, the program and (under ASan) its shadow memory: far below 1 TiB
    ((kb < HOSTILE_MAX_RSS_KB)) || fail "peak resident memory $kb KiB"
    ((t1 - t0 < HOSTILE_MAX_SECONDS * 1000000)) || fail "took $(((t1 - t0) / 1000)) ms"
}

@test "hostile-06 bf-mkbad refuses an unknown case" {
    run -2 bf-mkbad no-such-case
}

# ---------------------------------------------- 1x targets, endless inputs, overflow

# a tiny float model and its safetensors export, once
hole_setup() {
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 60 --n-val 20 -o d.bf
    bf-init --vocab 256 --ctx 16 --d 16 --layers 1 --heads 2 --ff 32 -o m.bf
}

@test "hostile-10 bf-export and bf-compress -o a FIFO or a device node write into it, never over it" {
    hole_setup
    mkfifo fifo
    for prog in "bf-export --format safetensors" "bf-compress"; do
        timeout 10 cat fifo >got &
        local reader=$!
        timeout 10 $prog -o fifo m.bf
        wait "$reader"
        [[ -p fifo ]] || fail "$prog: the FIFO was replaced"
        [[ -s got ]] || fail "$prog: nothing came through the FIFO"
    done
    if [[ $(id -u) -eq 0 ]]; then   # a device node of our own (as /dev/null), never the system's
        mknod null c 1 3
        bf-export --format gguf -o null m.bf
        bf-compress -o null m.bf
        [[ -c null ]] || fail "the device node was replaced by a regular file"
    fi
}

@test "hostile-11 bf-import reads no further than the header describes: /dev/zero, /dev/urandom, an endless pipe" {
    hole_setup
    for f in /dev/zero /dev/urandom; do
        run3 timeout 5 bf-import --format safetensors "$f"
        [[ $status -eq 1 ]] || fail "$f: status $status (124: it kept reading)"
        [[ $(wc -l <"$T/err") -eq 1 && ! -s $T/out ]]
    done
    bf-export --format safetensors -o m.st m.bf
    run3 bash -c 'set -o pipefail; (cat m.st; yes) | timeout 5 bf-import --format safetensors >/dev/null'
    [[ $status -eq 1 ]] || fail "endless pipe: status $status"
    [[ $(<"$T/err") == "bf-import: stdin: more than the "*" bytes of data the header describes" ]] || fail "$stderr"
    # the same file through a pipe, whole: read back as it was
    cat m.st | bf-import --format safetensors -o back.bf
    [[ $(loss_of back.bf d.bf val) == $(loss_of m.bf d.bf val) ]]
}

@test "hostile-12 an adapter that overflows the model: the merge and bf-eval fail with one line, no file" {
    hole_setup
    bf-bake -q --prompt "x" --data d.bf --steps 1 --alpha 1e6 --adapter-out -o a.bf m.bf
    bf-poke blk.0.wq.lora_a 0 1e30 a.bf | bf-poke blk.0.wq.lora_b 0 1e30 >big.bf
    run3 bf-halfbake --adapter big.bf -o out.bf m.bf
    [[ $status -eq 1 && $(wc -l <"$T/err") -eq 1 && ! -e out.bf ]] || fail "status $status: $stderr"
    [[ $stderr == *"not finite"* ]]
    run3 bf-eval --data d.bf --adapter big.bf m.bf
    [[ $status -eq 1 && $(wc -l <"$T/err") -eq 1 && ! -s $T/out ]] || fail "status $status: $(cat "$T/out") $stderr"
    [[ $stderr == *"loss on the val split is not finite"* ]]
}
