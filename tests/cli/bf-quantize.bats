#!/usr/bin/env bats
# bf-quantize (bf-quantize(1), bf-stream(5), bitforge(7)) and bf-eval on what it makes: help, usage
# errors, which tensors become ternary and which pass through byte for byte,
# the absmean and threshold rules checked against an independent computation
# here, --per-row, --pack, --include, --keep-latent, bad input, streaming in
# bounded memory, -o atomicity, the terminal, hostile streams, and bf-eval's
# integer kernels against --fake-quant and across BF_KERNEL levels.
#
# Families: 0x help and version, 1x usage and input errors, 2x what is
# quantized, 3x the rules, 4x output and streaming, 5x bf-eval on ternary
# models, 6x memory, 9x hostile streams.

load helpers

# a model with every kind of tensor: learned positions, layer norm biases, sub-norms, w3
FULL=(--vocab 13 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24 --norm layer --pos learned --subln)

# is_block NAME: one of blk.*.w{q,k,v,o,1,2,3}
is_block() { [[ $1 =~ ^blk\.[0-9]+\.w[qkvo123]$ ]]; }

# qref ARGS… <W: the quantization of the F32 matrix W (bf-dump rows on
# stdin), computed here in F32 as bf-quantize(1) gives it: prints the code rows,
# then one line of scales.  ARGS: absmean [per-row] | threshold TAU.
qref() {
    perl -e '
        sub f { unpack "f", pack "f", $_[0] }     # round to F32
        my ($method, $opt) = @ARGV;
        my @W = map { [map { f($_) } split] } <STDIN>;
        my $cols = @{$W[0]};
        my (@codes, @scales);
        if ($method eq "threshold") {
            my $tau = f($opt);
            for my $r (@W) {
                my $s = 0; $s += abs for @$r;
                my $cut = f($tau * f($s / $cols));
                my ($kept, $nk) = (0, 0);
                push @codes, [map { my $a = abs; $a > $cut ? ($kept += $a, $nk++, $_ > 0 ? 1 : -1)[2] : 0 } @$r];
                push @scales, $nk ? f($kept / $nk) : 0;
            }
        } else {
            my @groups = $opt ? map { [$_] } @W : ([@W]);
            for my $g (@groups) {
                my ($s, $n) = (0, 0);
                for my $r (@$g) { $s += abs for @$r; $n += @$r }
                my $gamma = f($s / $n);
                $gamma = f(1e-5) if $gamma < f(1e-5);
                for my $r (@$g) {
                    push @codes, [map { my $v = f($_ / $gamma); my $c = $v < 0 ? -int(-$v + 0.5) : int($v + 0.5);
                                        $c > 1 ? 1 : $c < -1 ? -1 : $c } @$r];
                }
                push @scales, $gamma;
            }
        }
        print join(" ", @$_), "\n" for @codes;
        print join(" ", map { sprintf "%.9g", $_ } @scales), "\n";' "$@"
}

# check_rule MODEL QUANTIZED ARGS…: every ternary tensor of QUANTIZED holds
# the codes and scales qref ARGS… computes from MODEL's F32 weights
check_rule() {
    local m=$1 q=$2 name n=0
    shift 2
    while read -r name _; do
        is_block "$name" || continue
        bf-dump "$name" "$m" | qref "$@" >want
        { bf-dump "$name" "$q"; bf-dump "$name.scale" "$q"; } >got
        diff want got >/dev/null || fail "$name: codes or scales differ from bf-quantize(1)'s rule ($*): $(diff want got | head -5)"
        n=$((n + 1))
    done < <(bf-tstat "$m")
    ((n > 0)) || fail "no block matrix checked"
}

# asan_build: the programs under test carry AddressSanitizer
asan_build() { grep -aq __asan_init "$BF_BIN/bf-quantize"; }

# ---------------------------------------------------------------- 0x help

@test "quant-01 --help prints usage on stdout and exits 0" {
    run3 bf-quantize --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-quantize' "$T/out"
    local f
    for f in --method absmean threshold --threshold --per-row --pack tq2 tq1 --include --keep-latent --output \
        --help --version; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "quant-02 -h is --help; --version prints the version" {
    run -0 bf-quantize -h
    assert_line --index 0 --partial 'usage: bf-quantize'
    prints_version bf-quantize
}

# ------------------------------------------------- 1x usage and input errors

@test "quant-10 usage errors exit 2 with one line and no output" {
    bf-init "${FULL[@]}" -o m.bf
    local line
    local -a args
    for line in '--method median' '--pack tq3' '--threshold 0.2' '--method absmean --threshold 0.2' \
        '--method threshold --per-row' '--method threshold --threshold x' '--method threshold --threshold -1' \
        '--include' '--bogus' '-x' 'm.bf m.bf' '--keep-latent=yes'; do
        read -ra args <<<"$line"
        run3 bf-quantize m.bf "${args[@]}"
        [[ $status -eq 2 ]] || fail "bf-quantize $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-quantize) ]] || fail "bf-quantize $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-quantize $line: wrote to stdout"
    done
    run3 bf-quantize --pack tq3 m.bf
    [[ $stderr == *tq2* && $stderr == *tq1* && $stderr == *"'tq3'"* ]]
}

@test "quant-11 a missing file, a data stream: exit 1, one line" {
    run3 bf-quantize "$T/missing.bf"
    assert_data_error bf-quantize
    [[ $stderr == *missing.bf* ]]
    bf-data modarith --p 5 -o d.bf
    run3 bf-quantize d.bf
    assert_data_error bf-quantize
    [[ $stderr == *"'data'"* ]]
    [[ ! -s $T/out ]]
}

@test "quant-12 an already ternary model: exit 1 naming the tensor" {
    bf-init "${FULL[@]}" | bf-quantize >q.bf
    run3 bf-quantize q.bf
    assert_data_error bf-quantize
    [[ $stderr == *"'blk.0.wq'"* && $stderr == *ternary* ]]
    run3 bf-quantize --pack tq1 --include 'blk.1.w2' q.bf
    assert_data_error bf-quantize
    [[ $stderr == *"'blk.1.w2'"* ]]
}

@test "quant-13 a non-finite weight (NaN, +inf, -inf) in a block matrix: exit 1 naming it" {
    bf-init "${FULL[@]}" -o m.bf
    local v
    for v in nan inf -inf; do
        bf-poke blk.1.w3 17 $v m.bf >bad.bf
        run3 bf-quantize bad.bf
        assert_data_error bf-quantize
        [[ $stderr == *"'blk.1.w3'"* && $stderr == *finite* ]] || fail "$v: $stderr"
    done
}

# ------------------------------------------------------ 2x what is quantized

@test "quant-20 default: exactly the block matrices become TQ2 with a scale [1]; the rest is byte-identical" {
    bf-init "${FULL[@]}" -o m.bf
    bf-quantize m.bf >q.bf
    bf-tstat m.bf >a
    bf-tstat q.bf >b
    local name dtype n=0
    while read -r name dtype _; do
        if is_block "$name"; then
            [[ $(awk -v n="$name" '$1 == n { print $2 }' b) == TQ2 ]] || fail "$name is not TQ2"
            [[ $(awk -v n="$name.scale" '$1 == n { print $2, $3 }' b) == "F32 1" ]] || fail "$name.scale is not F32 [1]"
            n=$((n + 1))
        else
            [[ $(hash b "$name") == "$(hash a "$name")" ]] || fail "$name changed"
            [[ $(awk -v n="$name" '$1 == n { print $2 }' b) == "$dtype" ]]
        fi
    done <a
    # 2 layers × (wq wk wv wo w1 w2 w3)
    [[ $n -eq 14 ]]
    # nothing else appears: each matrix gains only its scale
    [[ $(wc -l <b) -eq $(($(wc -l <a) + 14)) ]]
    [[ $(grep -c '\.latent ' b) -eq 0 ]]
    # the header is a model's, with the same meta, and the lineage names bf-quantize
    diff <(bf-eval --json m.bf | jget '$j->{meta}') <(bf-eval --json q.bf | jget '$j->{meta}')
    grep -aq bf-quantize q.bf
}

@test "quant-21 each ternary tensor records its rule: {method absmean, per_row false}" {
    bf-init "${FULL[@]}" | bf-quantize >q.bf
    [[ $(bf-dump -m blk.0.wq q.bf) == '{"method":"absmean","per_row":false}' ]]
    [[ $(bf-dump -m blk.1.w2 q.bf) == '{"method":"absmean","per_row":false}' ]]
    [[ $(bf-dump -m tok_emb q.bf) == null ]]
}

@test "quant-22 --keep-latent adds W.latent, the F32 weights unchanged" {
    bf-init "${FULL[@]}" -o m.bf
    bf-quantize --keep-latent m.bf >q.bf
    bf-tstat m.bf >a
    bf-tstat q.bf >b
    local name n=0
    while read -r name _; do
        is_block "$name" || continue
        [[ $(hash b "$name.latent") == "$(hash a "$name")" ]] || fail "$name.latent differs from the F32 $name"
        [[ $(awk -v n="$name.latent" '$1 == n { print $2 }' b) == F32 ]]
        n=$((n + 1))
    done <a
    [[ $n -eq 14 && $(grep -c '\.latent ' b) -eq 14 ]]
    # the codes and scales are those of a run without --keep-latent
    bf-quantize m.bf | bf-tstat >c
    diff <(grep -v '\.latent ' b) c
}

@test "quant-23 --include GLOB restricts to matching block matrices; repeatable" {
    bf-init "${FULL[@]}" -o m.bf
    bf-quantize --include 'blk.1.*' m.bf | bf-tstat >b
    [[ $(awk '$2 == "TQ2" { print $1 }' b | sort | tr '\n' ' ') == "blk.1.w1 blk.1.w2 blk.1.w3 blk.1.wk blk.1.wo blk.1.wq blk.1.wv " ]]
    bf-quantize --include 'blk.*.wq' --include 'blk.0.w[12]' m.bf | bf-tstat >c
    [[ $(awk '$2 == "TQ2" { print $1 }' c | sort | tr '\n' ' ') == "blk.0.w1 blk.0.w2 blk.0.wq blk.1.wq " ]]
    # a glob that also matches norms quantizes only the matrices
    bf-quantize --include 'blk.0.*' m.bf | bf-tstat >d
    [[ $(awk '$2 == "TQ2"' d | wc -l) -eq 7 ]]
    [[ $(awk '$1 == "blk.0.attn_norm.w" { print $2 }' d) == F32 ]]
}

@test "quant-24 an --include GLOB matching no block matrix: exit 1 naming it, no file left" {
    bf-init "${FULL[@]}" -o m.bf
    local g
    for g in 'blk.9.*' 'tok_emb' 'blk.0.attn_norm.w'; do
        run3 bf-quantize --include 'blk.0.wq' --include "$g" -o q.bf m.bf
        assert_data_error bf-quantize
        [[ $stderr == *"'$g'"* ]] || fail "the message does not quote '$g': $stderr"
        [[ ! -e q.bf ]] || fail "--include '$g' left q.bf"
    done
}

# ------------------------------------------------------------------ 3x the rules

@test "quant-30 absmean: codes clamp(round(W/γ)), γ = max(mean|W|, 1e-5), as computed independently" {
    bf-init "${FULL[@]}" --seed 3 -o m.bf
    bf-quantize m.bf >q.bf
    check_rule m.bf q.bf absmean
}

@test "quant-31 --per-row: one scale per output row, each row's own absmean" {
    bf-init "${FULL[@]}" --seed 4 -o m.bf
    bf-quantize --per-row m.bf >q.bf
    check_rule m.bf q.bf absmean per-row
    bf-eval --json q.bf >j.json
    [[ $(jshape blk.0.w1.scale j.json) == 24 && $(jshape blk.0.w2.scale j.json) == 16 ]]
    [[ $(bf-dump -m blk.0.w1 q.bf) == '{"method":"absmean","per_row":true}' ]]
    [[ $(jget 'map { $_->{scale_per_row} ? "row" : "one" } grep { $_->{name} eq "blk.1.wk" } @{$j->{tensors}}' j.json) == row ]]
}

@test "quant-32 --method threshold --threshold 0.2: per-row scales over kept weights, and the meta" {
    bf-init "${FULL[@]}" --seed 5 -o m.bf
    bf-quantize --method threshold --threshold 0.2 m.bf >q.bf
    check_rule m.bf q.bf threshold 0.2
    [[ $(bf-eval --json q.bf | jshape blk.0.w3.scale) == 24 ]]
    bf-dump -m blk.0.wq q.bf >meta.json
    [[ $(jget '$j->{method}' meta.json) == threshold && $(jget '$j->{per_row}' meta.json) == true ]]
    jget 'abs($j->{threshold} - 0.2) < 1e-6 ? "ok" : "threshold $j->{threshold}"' meta.json | grep -qx ok
    [[ $(jget 'join ",", sort keys %$j' meta.json) == method,per_row,threshold ]]
}

@test "quant-33 --method threshold: the default threshold is 0.1; a larger one zeroes more weights" {
    bf-init "${FULL[@]}" --seed 6 -o m.bf
    bf-quantize --method threshold m.bf >q1.bf
    check_rule m.bf q1.bf threshold 0.1
    jget 'abs($j->{threshold} - 0.1) < 1e-6 ? "ok" : "bad"' <(bf-dump -m blk.1.wv q1.bf) | grep -qx ok
    bf-quantize --method threshold --threshold 1.5 m.bf >q2.bf
    local z1 z2
    z1=$(bf-eval --json q1.bf | jget 'map { $_->{shares}{0} } grep { $_->{name} eq "blk.0.w1" } @{$j->{tensors}}')
    z2=$(bf-eval --json q2.bf | jget 'map { $_->{shares}{0} } grep { $_->{name} eq "blk.0.w1" } @{$j->{tensors}}')
    awk -v a="$z1" -v b="$z2" 'BEGIN { exit !(b > a + 0.3) }' || fail "zero share $z1 at 0.1, $z2 at 1.5"
}

@test "quant-34 --pack tq1: the same codes as TQ2; bf-eval reports 2.0 and 1.6 bits per weight" {
    # d 80, ff 320: every column count a multiple of 20, so no row padding
    bf-init --vocab 11 --ctx 4 --d 80 --heads 4 --layers 1 -o m.bf
    bf-quantize m.bf >q2.bf
    bf-quantize --pack tq1 m.bf >q1.bf
    bf-eval --json q2.bf >j2.json
    bf-eval --json q1.bf >j1.json
    local name
    for name in blk.0.wq blk.0.wk blk.0.wv blk.0.wo blk.0.w1 blk.0.w2 blk.0.w3; do
        [[ $(jget "map { \"\$_->{dtype} \$_->{bits_per_weight}\" } grep { \$_->{name} eq '$name' } @{\$j->{tensors}}" j2.json) == "TQ2 2" ]] ||
            fail "$name in TQ2: $(jget "map { \"\$_->{dtype} \$_->{bits_per_weight}\" } grep { \$_->{name} eq '$name' } @{\$j->{tensors}}" j2.json)"
        [[ $(jget "map { \"\$_->{dtype} \$_->{bits_per_weight}\" } grep { \$_->{name} eq '$name' } @{\$j->{tensors}}" j1.json) == "TQ1 1.6" ]] ||
            fail "$name in TQ1: $(jget "map { \"\$_->{dtype} \$_->{bits_per_weight}\" } grep { \$_->{name} eq '$name' } @{\$j->{tensors}}" j1.json)"
        diff <(bf-dump "$name" q2.bf) <(bf-dump "$name" q1.bf) >/dev/null || fail "$name: TQ1 codes differ from TQ2's"
        [[ $(bf-dump -x "$name.scale" q2.bf) == "$(bf-dump -x "$name.scale" q1.bf)" ]]
    done
    # the table too
    bf-eval q1.bf | grep -Eq '^blk\.0\.w1 +TQ1 +320x80 +25600 +5120 +1\.60 '
    bf-eval q2.bf | grep -Eq '^blk\.0\.w1 +TQ2 +320x80 +25600 +6400 +2\.00 '
}

@test "quant-35 the same input gives byte-identical output" {
    bf-init "${FULL[@]}" -o m.bf
    bf-quantize --per-row --keep-latent m.bf >a.bf
    bf-quantize --per-row --keep-latent m.bf >b.bf
    cmp a.bf b.bf
    bf-quantize --per-row --keep-latent <m.bf >c.bf
    bf-quantize --per-row --keep-latent - <m.bf >d.bf
    diff <(bf-tstat a.bf) <(bf-tstat c.bf)
    diff <(bf-tstat a.bf) <(bf-tstat d.bf)
}

# ------------------------------------------------------ 4x output and streaming

@test "quant-40 a failure mid-stream: stdout lacks the trailer, -o leaves no file and keeps an existing one" {
    # tok_emb (2 MB) passes through first: more than the writer buffers
    bf-init --vocab 2000 --ctx 6 --d 256 --heads 2 --layers 2 | bf-poke blk.1.wo 0 nan >bad.bf
    run3 bf-quantize bad.bf
    assert_data_error bf-quantize
    # part of the stream had been written: it must not pass as whole
    [[ -s $T/out ]] || fail "nothing on stdout before the failure: the test needs a larger model"
    cp "$T/out" partial.bf
    run3 bf-eval partial.bf
    assert_data_error bf-eval
    [[ $stderr == *truncated* ]]
    run3 bf-quantize -o q.bf bad.bf
    assert_data_error bf-quantize
    [[ ! -e q.bf ]]
    echo precious >q.bf
    run3 bf-quantize -o q.bf bad.bf
    assert_data_error bf-quantize
    [[ $(<q.bf) == precious ]]
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
}

@test "quant-41 -o FILE, -o /dev/null (still a character device), pipes" {
    bf-init "${FULL[@]}" -o m.bf
    run3 bf-quantize -o q.bf m.bf
    [[ $status -eq 0 && ! -s $T/out && ! -s $T/err ]]
    diff <(bf-tstat q.bf) <(bf-quantize m.bf | bf-tstat)
    run3 bf-quantize -o /dev/null m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ -c /dev/null ]]
    local st=0
    bf-init "${FULL[@]}" | bf-quantize --keep-latent | bf-quantize --include 'blk.0.wq' >x.bf 2>err || st=$?
    [[ $st -ne 0 ]] || fail "quantizing twice through a pipe worked"
    st=0
    bf-init "${FULL[@]}" | bf-quantize --include 'blk.0.*' | bf-quantize --include 'blk.1.*' | bf-eval --json >j.json || st=$?
    [[ $st -eq 0 ]]
    [[ $(jget 'scalar grep { $_->{dtype} eq "TQ2" } @{$j->{tensors}}' j.json) -eq 14 ]]
}

@test "quant-42 refuses to write a stream to a terminal (exit 2)" {
    bf-init "${FULL[@]}" -o m.bf
    refuses_terminal bf-quantize "$T/m.bf"
}

# ------------------------------------------------ 5x bf-eval on ternary models

# a model trained a little on modarith, so that its loss means something
trained() {
    bf-data modarith --p 11 --frac 0.5 -o d.bf
    bf-init --like d.bf --d 40 --heads 2 --layers 1 | bf-ste-train --data d.bf --steps 30 --lr 3e-3 --threads 1 -q -o m.bf
}

@test "quant-50 ternary models: integer kernels and --fake-quant give the same loss to 1e-4" {
    trained
    local args a b
    for args in '' '--pack tq1' '--per-row' '--method threshold --threshold 0.3 --pack tq1'; do
        # shellcheck disable=SC2086
        bf-quantize --keep-latent $args m.bf >q.bf
        a=$(bf-eval --data d.bf --json q.bf | jget '$j->{loss}')
        b=$(bf-eval --data d.bf --json --fake-quant q.bf | jget '$j->{loss}')
        rel_close "$a" "$b" 1e-4 || fail "bf-quantize $args: loss $a with integer kernels, $b with --fake-quant"
    done
}

@test "quant-51 every BF_KERNEL level this CPU has gives the scalar level's output" {
    grep -qw avx2 /proc/cpuinfo || skip "this CPU has no AVX2"
    trained
    local args lv levels=avx2
    grep -qw avx512bw /proc/cpuinfo && levels="$levels avx512"
    grep -qw avx512_vnni /proc/cpuinfo && levels="$levels avx512vnni"
    for args in '' '--pack tq1 --per-row'; do
        # shellcheck disable=SC2086
        bf-quantize $args m.bf >q.bf
        # the same numbers (--json also reports the seconds taken)
        BF_KERNEL=scalar bf-eval --data d.bf --json q.bf | jget 'map { "$_ $j->{$_}" } grep { $_ ne "seconds" } sort keys %$j' >s.json
        BF_KERNEL=scalar bf-eval --data d.bf --split train q.bf >s.txt
        for lv in $levels; do
            BF_KERNEL=$lv bf-eval --data d.bf --json q.bf | jget 'map { "$_ $j->{$_}" } grep { $_ ne "seconds" } sort keys %$j' >v.json
            BF_KERNEL=$lv bf-eval --data d.bf --split train q.bf >v.txt
            cmp s.json v.json || fail "bf-quantize $args, $lv: $(cat s.json v.json)"
            cmp s.txt v.txt
        done
    done
}

@test "quant-52 a model quantized without --keep-latent evaluates as the one with latents (same codes, same scales)" {
    trained
    bf-quantize m.bf >plain.bf
    bf-quantize --keep-latent m.bf >lat.bf
    # the stored codes and scales are the same ...
    diff <(bf-tstat plain.bf) <(bf-tstat lat.bf | grep -v '\.latent ')
    # ... so the model is the same: W = scale·codes, whatever the latents were
    local a b
    for fq in '' --fake-quant; do
        a=$(bf-eval --data d.bf --json $fq plain.bf | jget '$j->{loss}')
        b=$(bf-eval --data d.bf --json $fq lat.bf | jget '$j->{loss}')
        rel_close "$a" "$b" 1e-5 || fail "bf-eval ${fq:-(integer kernels)}: loss $a without latents, $b with them"
    done
}

# --------------------------------------------------------------- 6x memory

# big_model: $BIG, a 196 MiB model made once for the file: 1 block with
# d 2048, ff 5632: w1, w2, w3 of 44 MiB, wq..wo of 16 MiB
BIG=$BATS_FILE_TMPDIR/big.bf
big_model() {
    [[ -s $BIG ]] || bf-init --vocab 16 --ctx 8 --d 2048 --ff 5632 --heads 16 --layers 1 -o "$BIG"
    ln -sf "$BIG" big.bf
}

@test "quant-60 streams a 196 MiB model under a 146 MiB address-space limit, in bounded resident memory" {
    big_model
    local size_kb st=0 rss
    size_kb=$(($(stat -L -c %s big.bf) / 1024))
    ((size_kb > 190 * 1024))
    if asan_build; then
        echo "# ASan reserves terabytes of address space: no ulimit -v, peak RSS only" >&3
    else
        local -a meter=()
        [[ -x /usr/bin/time ]] && meter=(/usr/bin/time -q -f %M -o rss)
        (ulimit -v $((146 * 1024)) && exec "${meter[@]}" timeout 60 bf-quantize -o q.bf big.bf) 2>err || st=$?
        [[ $st -eq 0 ]] || fail "under ulimit -v 146 MiB: exit status $st: $(<err)"
        [[ $(bf-eval --json q.bf | jget 'scalar grep { $_->{dtype} eq "TQ2" } @{$j->{tensors}}') -eq 7 ]]
    fi
    [[ -x /usr/bin/time ]] || skip "GNU time is needed to measure the peak memory"
    # ASan's shadow memory counts too; its quarantine of freed blocks need not
    [[ -s rss ]] || ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8 \
        /usr/bin/time -q -f %M -o rss bf-quantize big.bf >/dev/null
    read -r rss <rss
    ((rss < size_kb * 6 / 10)) || fail "peak RSS $rss KiB for a model of $size_kb KiB"
}

@test "quant-62 bf-eval --data on a ternary model holds no float copy of its weights: peak RSS under 40% of the F32 model" {
    asan_build && skip "ASan's shadow memory counts in the peak"
    [[ -x /usr/bin/time ]] || skip "GNU time is needed to measure the peak memory"
    big_model
    bf-quantize big.bf >q.bf
    bf-data modarith --p 14 -o d.bf   # vocab 16, as the model
    local size_kb rss
    size_kb=$(($(stat -L -c %s big.bf) / 1024))
    /usr/bin/time -q -f %M -o rss bf-eval --data d.bf q.bf >/dev/null
    read -r rss <rss
    # the weights as int8 × ternary kernels want them are 1/16 of the F32 ones;
    # the rest is one layer's activations and the program itself
    ((rss < size_kb * 4 / 10)) || fail "peak RSS $rss KiB, F32 model $size_kb KiB"
}

@test "quant-61 when memory runs out, bf-quantize fails with one 'bf-quantize:' line, no file" {
    asan_build && skip "ASan needs an unlimited address space"
    big_model
    local lim st
    # limits below what the largest tensor needs, so that allocations fail at different places
    for lim in 60 72 78 80 82 84 86 88 90 92; do
        st=0
        (ulimit -v $((lim * 1024)) && exec timeout 60 bf-quantize -o q.bf big.bf) >out 2>err || st=$?
        ((st == 0)) && continue
        [[ $st -eq 1 ]] || fail "ulimit -v $lim MiB: exit status $st: $(<err)"
        [[ $(wc -l <err) -eq 1 && $(<err) == "bf-quantize: "* ]] || fail "ulimit -v $lim MiB: stderr: $(<err)"
        [[ ! -e q.bf && ! -s out ]]
    done
}

# ------------------------------------------------------- 9x hostile streams

@test "quant-90 every bf-mkbad case as a model stream, through a pipe: exit 1, one matching line, no valid output" {
    quick hostile_each pipe model 'bf-quantize --keep-latent {}' streaming
}

@test "quant-91 bf-eval --data: every bf-mkbad case as the model (a pipe) and as the data (a file)" {
    bf-data modarith --p 8 -o d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 | bf-quantize -o q.bf
    quick hostile_each pipe model "bf-eval --data $T/d.bf {}"
    quick hostile_each file data "bf-eval --data {} --fake-quant $T/q.bf"
}
