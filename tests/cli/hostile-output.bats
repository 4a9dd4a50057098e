#!/usr/bin/env bats
# Hostile places to write (bitforge(7) CONVENTIONS: never a partial file,
# messages, exit status): every program that writes a file or standard
# output, one line each in OUTPUT_PROGS, meets a FIFO and /dev/null as -o,
# /dev/full as -o and as standard output, a closed standard output, a
# file-size limit (ulimit -f) smaller than its output, and an address-space
# limit (ulimit -v) too small for its work.  A failure is exit status 1 and
# one line "PROG: …" on stderr, never a signal, never a file left behind, a
# FIFO or a device never replaced.  Each class is one test over the whole
# table that fails once, listing every violation.
#
# Families: 0x the table itself, 1x named places (-o), 2x standard output,
# 3x resource limits.

load helpers

# One line per program that writes, and per subcommand, direction or format
# that writes its own way; @NAME is an input that setup_file makes in $IN.
# The classes that write to a named place add "-o PLACE".  A new program is
# covered by adding its line here (hostile-output-01 checks that every
# program of $BF_BIN has one).
OUTPUT_PROGS=(
    'bf-init --vocab 256 --ctx 16 --d 16 --layers 1 --heads 2 --ff 32'
    'bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 60 --n-val 20'
    'bf-quantize --keep-latent @m.bf'
    'bf-dequant @q.bf'
    'bf-ste-train -q --data @d.bf --steps 2 --threads 2 @m.bf'
    'bf-muon -q --data @d.bf --steps 2 --threads 2 @m.bf'
    'bf-bake -q --prompt x --data @d.bf --steps 2 --threads 2 @m.bf'
    'bf-bake -q --prompt x --data @d.bf --steps 2 --threads 2 --adapter-out @m.bf'
    'bf-halfbake -q --adapter @a.bf --threads 2 @m.bf'
    'bf-svf train -q --data @d.bf --steps 2 --threads 2 @m.bf'
    'bf-svf mix -q --experts @e1.bf,@e2.bf --data @d.bf --iterations 1 --population 4 --elite 2 --threads 2 @m.bf'
    'bf-svf apply --expert @e1.bf @m.bf'
    'bf-compress @m.bf'
    'bf-compress -d @m.tar'
    'bf-export --format safetensors @m.bf'
    'bf-export --format gguf @m.bf'
    'bf-import --format safetensors @m.st'
    'bf-eval @m.bf'
    'bf-eval --data @d.bf --threads 2 @m.bf'
    'bf-generate -q --max-new 8 --stop zz @m.bf x'
)
# Programs (by name) without -o: they write standard output only.
STDOUT_ONLY='bf-eval bf-generate'

IN=$BATS_FILE_TMPDIR/in     # the inputs
REF=$BATS_FILE_TMPDIR/ref   # REF/N: line N run plainly with -o o: o, err, status

setup_file() {
    mkdir -p "$IN" && cd "$IN" || return 1
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 60 --n-val 20 -o d.bf
    bf-init --vocab 256 --ctx 16 --d 16 --layers 1 --heads 2 --ff 32 -o m.bf
    bf-quantize --keep-latent m.bf -o q.bf
    bf-bake -q --prompt x --data d.bf --steps 2 --threads 2 --adapter-out -o a.bf m.bf
    bf-svf train -q --data d.bf --steps 2 --name e1 --threads 2 -o e1.bf m.bf
    bf-svf train -q --data d.bf --steps 2 --name e2 --seed 2 --threads 2 -o e2.bf m.bf
    bf-export --format safetensors -o m.st m.bf
    bf-compress -o m.tar m.bf
    local n st
    for n in "${!OUTPUT_PROGS[@]}"; do
        mkdir -p "$REF/$n" && cd "$REF/$n" || return 1
        entry "$n"
        st=0
        if stdout_only; then "${argv[@]}" >o 2>err || st=$?
        else "${argv[@]}" -o o >stdout 2>err || st=$?; fi
        echo "$st" >status
    done
}

# entry N: line N of the table in argv (inputs as paths), its program in prog
entry() {
    local w
    local -a words
    read -ra words <<<"${OUTPUT_PROGS[$1]}"
    argv=(timeout -k 1 30)
    for w in "${words[@]}"; do argv+=("${w//@/$IN/}"); done
    prog=${words[0]}
}

# stdout_only: the program of the last entry has no -o
stdout_only() { [[ " $STDOUT_ONLY " == *" $prog "* ]]; }

# fails_well ST [SUBSTRING]: appends to reason why exit status ST and
# $T/err are not a failure in one line "$prog: …" (containing SUBSTRING,
# case-insensitive, when given)
fails_well() {
    local why
    if (($1 > 128)); then reason+=("exit status $1 (signal $(($1 - 128)))")
    elif (($1 != 1)); then reason+=("exit status $1"); fi
    why=$(one_line_reason "$T/err" "$prog")
    [[ -z $why ]] || reason+=("stderr: $why")
    if [[ -n ${2-} ]] && ! grep -qi -- "$2" "$T/err"; then reason+=("no '$2' in the message"); fi
}

# note N WHAT: records line N's violations (reason) under WHAT
note() {
    ((${#reason[@]} == 0)) ||
        fails+=("line $1 '${OUTPUT_PROGS[$1]}' $2: $(IFS=';'; echo "${reason[*]}") -- stderr: $(head -c 300 "$T/err" | tr '\n' '|')")
}

# report CLASS: fails the test once, listing every violation
report() {
    if ((${#fails[@]})); then
        printf '# %s\n' "${fails[@]}" >&2
        fail "$1: ${#fails[@]} violation(s)"
    fi
}

# asan_build: the programs under test carry AddressSanitizer
asan_build() { grep -aq __asan_init "$BF_BIN/bf-quantize"; }

# ---------------------------------------------------------------- 0x the table

@test "hostile-output-01 the table covers every program, subcommand and format that writes, and each line runs" {
    local p n w
    local -a fails=() subs fmts
    for p in "$BF_BIN"/bf-*; do
        p=${p##*/}
        printf '%s\n' "${OUTPUT_PROGS[@]}" | grep -q "^$p " || fails+=("$p has no line")
    done
    # the subcommands of bf-svf's usage lines, the formats of bf-export's
    read -ra subs <<<"$(bf-svf --help | sed -n 's/^\(usage:\)\{0,1\} *bf-svf \([a-z]*\) .*/\2/p' | tr '\n' ' ')"
    ((${#subs[@]} == 3)) || fails+=("bf-svf --help shows ${#subs[@]} subcommands, not train, mix and apply")
    read -ra fmts <<<"$(bf-export --help | sed -n 's/^usage: bf-export --format \([a-z|]*\) .*/\1/p' | tr '|' ' ')"
    ((${#fmts[@]} >= 2)) || fails+=("bf-export --help shows ${#fmts[@]} formats")
    for w in "${subs[@]/#/bf-svf }" "${fmts[@]/#/bf-export --format }" "bf-compress -d"; do
        printf '%s\n' "${OUTPUT_PROGS[@]}" | grep -q "^$w " || fails+=("'$w' has no line")
    done
    for n in "${!OUTPUT_PROGS[@]}"; do
        [[ $(<"$REF/$n/status") -eq 0 && ! -s $REF/$n/err && -s $REF/$n/o ]] ||
            fails+=("line $n '${OUTPUT_PROGS[$n]}': status $(<"$REF/$n/status"), $(stat -c %s "$REF/$n/o" 2>/dev/null || echo no) bytes, stderr: $(head -c 300 "$REF/$n/err")")
        [[ ! -s $REF/$n/stdout ]] || fails+=("line $n '${OUTPUT_PROGS[$n]}': wrote to stdout with -o")
    done
    report "the table"
}

# ---------------------------------------------------------------- 1x -o PLACE

# a FIFO as -o: the program writes into it (a reader gets the bytes of a run
# to a regular file) or refuses in one line; either way it stays a FIFO
fifo_class() {
    local n st rd fd d
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        stdout_only && continue
        d=$T/$n
        mkdir "$d" && mkfifo "$d/o"
        timeout 20 cat "$d/o" >"$d/got" &
        rd=$!
        st=0
        (cd "$d" && exec "${argv[@]}" -o o) >"$T/out" 2>"$T/err" || st=$?
        # a reader still waiting for a writer (the program never opened the
        # FIFO) gets one, and end of file; opening read-write never blocks
        exec {fd}<>"$d/o"
        exec {fd}>&-
        wait "$rd" || true
        reason=()
        [[ -p $d/o ]] || reason+=("the FIFO was replaced")
        if ((st == 0)); then
            [[ ! -s $T/err ]] || reason+=("a message on success")
            cmp -s "$d/got" "$REF/$n/o" || reason+=("the reader got $(stat -c %s "$d/got") bytes, not the $(stat -c %s "$REF/$n/o") of -o FILE")
        else
            fails_well "$st"
        fi
        [[ ! -s $T/out ]] || reason+=("output on stdout")
        [[ $(ls -A "$d") == $'got\no' ]] || reason+=("files beside the FIFO: $(ls -A "$d" | tr '\n' ' ')")
        note "$n" "(-o FIFO)"
    done
    report "-o FIFO"
}

@test "hostile-output-10 -o a FIFO: written into (the reader gets the bytes) or refused in one line; still a FIFO" {
    local -a fails=() reason argv
    quick fifo_class
}

null_class() {
    local n st
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        stdout_only && continue
        st=0
        "${argv[@]}" -o /dev/null >"$T/out" 2>"$T/err" || st=$?
        reason=()
        [[ $st -eq 0 ]] || reason+=("exit status $st")
        [[ ! -s $T/err ]] || reason+=("a message")
        [[ ! -s $T/out ]] || reason+=("output on stdout")
        [[ -c /dev/null ]] || { reason+=("/dev/null is no longer a character device"); note "$n" "(-o /dev/null)"; break; }
        note "$n" "(-o /dev/null)"
    done
    report "-o /dev/null"
}

@test "hostile-output-11 -o /dev/null: exit 0, no message, /dev/null still a character device" {
    local -a fails=() reason argv
    quick null_class
}

full_class() {
    local n st
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        if ! stdout_only; then
            st=0
            "${argv[@]}" -o /dev/full >"$T/out" 2>"$T/err" || st=$?
            reason=()
            fails_well "$st"
            [[ ! -s $T/out ]] || reason+=("output on stdout")
            note "$n" "(-o /dev/full)"
        fi
        st=0
        "${argv[@]}" >/dev/full 2>"$T/err" || st=$?
        reason=()
        fails_well "$st"
        note "$n" "(>/dev/full)"
    done
    report "/dev/full"
}

@test "hostile-output-12 /dev/full as -o and as stdout: exit 1, one line 'PROG: …'" {
    local -a fails=() reason argv
    [[ -c /dev/full ]] || skip "no /dev/full"
    quick full_class
}

# ---------------------------------------------------------------- 2x stdout

closed_class() {
    local n st
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        st=0
        "${argv[@]}" >&- 2>"$T/err" || st=$?
        reason=()
        fails_well "$st"
        note "$n" "(>&-)"
    done
    report "stdout closed"
}

@test "hostile-output-20 standard output closed: exit 1, one line 'PROG: …', no signal" {
    local -a fails=() reason argv
    quick closed_class
}

# ---------------------------------------------------------------- 3x limits

# ulimit -f below the output's size (KiB, at most 8: the write fails part of
# the way through when the output is larger than 16 KiB): the write fails
# with EFBIG, and nothing is left in the directory.  Stderr goes through a
# pipe: a file there would be under the same limit.
fsize_class() {
    local n st size lim d
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        size=$(stat -c %s "$REF/$n/o")
        lim=$((size / 2048))
        ((lim <= 8)) || lim=8
        d=$T/$n
        mkdir "$d"
        if stdout_only; then   # the shell makes the file; the program may not grow it
            (cd "$d" && ulimit -f "$lim" && exec "${argv[@]}" 2>&1 >out) | cat >"$T/err"
        else
            (cd "$d" && ulimit -f "$lim" && exec "${argv[@]}" -o out 2>&1 >"$T/out") | cat >"$T/err"
        fi
        st=${PIPESTATUS[0]}
        reason=()
        ((st != 128 + 25)) || reason+=("killed by SIGXFSZ")
        fails_well "$st" "file too large"
        if stdout_only; then
            [[ $(ls -A "$d") == out ]] || reason+=("left in the directory: $(ls -A "$d" | tr '\n' ' ')")
        else
            [[ -z $(ls -A "$d") ]] || reason+=("left in the directory: $(ls -A "$d" | tr '\n' ' ')")
            [[ ! -s $T/out ]] || reason+=("output on stdout")
        fi
        note "$n" "(ulimit -f $lim, $size bytes)"
    done
    report "ulimit -f"
}

@test "hostile-output-30 a file-size limit below the output: exit 1, one 'file too large' line, no file left" {
    local -a fails=() reason argv
    quick fsize_class
}

# vm_floor PROG: the smallest address-space limit (KiB, to 64) under which
# PROG --version runs: the dynamic loader, the libraries' constructors and a
# first allocation.  Below it, and in a small band at it, the process can
# fail or crash before main (a library's constructor meeting a failed
# malloc), which no program can help.
vm_floor() {
    local lo=1024 hi=$((4 * 1024 * 1024)) mid
    while ((hi - lo > 64)); do
        mid=$(((lo + hi) / 2))
        if (ulimit -v "$mid" && exec timeout -k 1 10 "$1" --version) >/dev/null 2>&1; then hi=$mid; else lo=$mid; fi
    done
    echo "$hi"
}

# ulimit -v a little above what starting the program takes (64 and 256 KiB,
# 1 and 4 MiB more, so that allocations fail at different places): each run
# fails well or, where the limit is enough, writes what the plain run wrote;
# at least one of them fails (the stream writer alone takes 1 MiB, OpenBLAS's
# work buffers hundreds).  OpenBLAS starts no threads of its own
# (OPENBLAS_NUM_THREADS=1): near the limit they fail to start before main,
# in OpenBLAS's words.
vm_class() {
    local n st floor extra lim d nfail
    local -A floors=()
    export OPENBLAS_NUM_THREADS=1
    for n in "${!OUTPUT_PROGS[@]}"; do
        entry "$n"
        [[ -n ${floors[$prog]-} ]] || floors[$prog]=$(vm_floor "$prog")
        floor=${floors[$prog]}
        nfail=0
        for extra in 64 256 1024 4096; do
            lim=$((floor + extra))
            d=$T/$n-$extra
            mkdir "$d"
            st=0
            if stdout_only; then
                (cd "$d" && ulimit -v "$lim" && exec "${argv[@]}") >"$d.out" 2>"$T/err" || st=$?
            else
                (cd "$d" && ulimit -v "$lim" && exec "${argv[@]}" -o o) >"$d.out" 2>"$T/err" || st=$?
            fi
            reason=()
            if ((st == 0)); then
                [[ ! -s $T/err ]] || reason+=("a message on success")
                if stdout_only; then cmp -s "$d.out" "$REF/$n/o" || reason+=("stdout differs from the plain run's")
                else cmp -s "$d/o" "$REF/$n/o" || reason+=("-o o differs from the plain run's"); fi
            else
                nfail=$((nfail + 1))
                fails_well "$st"
                [[ -z $(ls -A "$d") ]] || reason+=("left in the directory: $(ls -A "$d" | tr '\n' ' ')")
                [[ ! -s $d.out ]] || reason+=("$(stat -c %s "$d.out") bytes on stdout")
            fi
            note "$n" "(ulimit -v $lim KiB: $prog starts in $floor)"
        done
        reason=()
        ((nfail > 0)) || reason+=("never ran out of memory, even $floor + 64 KiB")
        note "$n" "(ulimit -v)"
    done
    report "ulimit -v"
}

@test "hostile-output-31 an address-space limit too small for the work: exit 1, one line, no file left" {
    asan_build && skip "ASan needs an unlimited address space"
    local -a fails=() reason argv
    quick vm_class
}
