#!/usr/bin/env bats
# bf-eval (bf-eval(1), bitforge(7)): help, usage errors, inputs (file,
# stdin, pipe), the table and --json on the test vectors (tests/vectors) and
# on bf-init's models, the vector models' metrics against their golden
# values, and --incremental.  Corrupt and hostile input: hostile.bats.
#
# Families: 0x help and version, 1x usage and input errors, 2x the vectors,
# 3x inputs, pipes and output.

load helpers

# ---------------------------------------------------------------- 0x help

@test "eval-01 --help prints usage on stdout and exits 0" {
    run3 bf-eval --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-eval' "$T/out"
    grep -q -- '--json' "$T/out"
    grep -q -- '--version' "$T/out"
}

@test "eval-02 -h is --help" {
    run -0 bf-eval -h
    assert_line --index 0 --partial 'usage: bf-eval'
}

@test "eval-03 --version prints the version and exits 0" {
    prints_version bf-eval
    # the same version as every other program
    [[ $(awk '{ print $3 }' "$T/out") == "$(bf-init --version | awk '{ print $3 }')" ]]
}

# ------------------------------------------------ 1x usage and input errors

@test "eval-10 usage errors exit 2 with one line" {
    local line
    local -a args
    for line in "a.bf b.bf" "--bogus $VECTORS/ternary.bf" "-x" "--json=yes $VECTORS/ternary.bf" \
        "$VECTORS/ternary.bf $VECTORS/dtypes.bf" "--incremental $VECTORS/model-rms-swiglu-rope.bf"; do
        read -ra args <<<"$line"
        run3 bf-eval "${args[@]}"
        [[ $status -eq 2 ]] || fail "bf-eval $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-eval) ]] || fail "bf-eval $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-eval $line: wrote to stdout"
    done
}

@test "eval-11 a missing file or a directory: exit 1, one line naming it" {
    run3 bf-eval "$T/missing.bf"
    assert_data_error bf-eval
    [[ $stderr == *missing.bf* ]]
    mkdir dir.bf
    run3 bf-eval dir.bf
    assert_data_error bf-eval
    [[ $stderr == *dir.bf* ]]
    [[ ! -s $T/out ]]
}

@test "eval-12 a file that is not a stream: exit 1, one line naming it" {
    printf 'kind: model\n' >notes.txt
    run3 bf-eval notes.txt
    assert_data_error bf-eval
    [[ $stderr == "bf-eval: notes.txt: "* ]]
    run3 bf-eval --json notes.txt
    assert_data_error bf-eval
    [[ ! -s $T/out ]]
}

# ------------------------------------------------------------ 2x the vectors

@test "eval-20 reads every vector file, as a table and as --json" {
    local v n
    n=0
    for v in "$VECTORS"/*.bf; do
        run3 bf-eval "$v"
        [[ $status -eq 0 && ! -s $T/err ]] || fail "$(basename "$v"): status $status: $stderr"
        grep -q '^kind: ' "$T/out"
        grep -q '^total ' "$T/out"
        grep -q '^ratio to F32: ' "$T/out"
        run3 bf-eval --json "$v"
        [[ $status -eq 0 && ! -s $T/err ]] || fail "$(basename "$v") --json: status $status: $stderr"
        [[ $(grep -c '' "$T/out") -eq 1 ]] || fail "$(basename "$v") --json: not one line"
        # each tensor once in the table (between the column titles and the total) and in the JSON
        [[ $(jget 'scalar @{$j->{tensors}}' "$T/out") -eq $(bf-eval "$v" | sed -n '3,$p' | grep -vc '^total \|^ratio') ]]
        n=$((n + 1))
    done
    [[ $n -ge 6 ]] || fail "only $n vector files in $VECTORS"
}

@test "eval-21 ternary.bf --json: totals (46 params, 28 bytes), shares and scales" {
    bf-eval --json "$VECTORS/ternary.bf" >j.json
    [[ $(jget '$j->{totals}{params}' j.json) -eq 46 ]]
    [[ $(jget '$j->{totals}{bytes}' j.json) -eq 28 ]]
    jget 'my $t = $j->{totals};
        abs($t->{bits_per_weight} - 8 * 28 / 46) < 1e-12 && abs($t->{ratio_to_f32} - 4 * 46 / 28) < 1e-12 ? "ok" : "bad"' \
        j.json | grep -qx ok
    # a: TQ2 [3,7] with one scale; b: TQ1 [3,7] with a scale per row (0.5, 1, 2)
    [[ $(jget 'join " ", map { "$_->{name}:$_->{dtype}:" . join(",", @{$_->{shape}}) . ":$_->{params}:$_->{bytes}" }
        @{$j->{tensors}}' j.json) == "a:TQ2:3,7:21:6 a.scale:F32:1:1:4 b:TQ1:3,7:21:6 b.scale:F32:3:3:12" ]]
    jget 'my ($a, $b) = @{$j->{tensors}}[0, 2];
        my $s = $a->{shares};
        abs($s->{"-1"} - 6 / 21) < 1e-12 && abs($s->{"0"} - 12 / 21) < 1e-12 && abs($s->{"+1"} - 3 / 21) < 1e-12
        && $b->{shares}{"-1"} == $s->{"-1"} && $b->{shares}{"+1"} == $s->{"+1"}
        && $a->{scale} == 0.125 && !$a->{scale_per_row}
        && abs($b->{scale} - 3.5 / 3) < 1e-12 && $b->{scale_per_row} ? "ok" : "bad"' j.json | grep -qx ok
}

@test "eval-22 ternary.bf as a table" {
    run -0 bf-eval "$VECTORS/ternary.bf"
    assert_line --index 0 'kind: model'
    assert_line --regexp '^a +TQ2 +3x7 +21 +6 +2\.29 +0\.286 +0\.571 +0\.143 +0\.125$'
    assert_line --regexp '^b +TQ1 +3x7 +21 +6 +2\.29 +0\.286 +0\.571 +0\.143 +1\.167 \(row mean\)$'
    assert_line --regexp '^total +46 +28 +4\.87$'
    assert_line 'ratio to F32: 6.57x'
}

@test "eval-23 dtypes.bf: every dtype, a scalar, an empty tensor and a 255-byte name" {
    bf-eval --json "$VECTORS/dtypes.bf" >j.json
    diff - <(jget 'map { "$_->{dtype} [" . join(",", @{$_->{shape}}) . "] $_->{params} $_->{bytes} " .
        (length $_->{name} > 20 ? length($_->{name}) . " bytes" : $_->{name}) } @{$j->{tensors}}' j.json) <<'EOF'
F32 [2,3] 6 24 f32
F16 [4] 4 8 f16
BF16 [2] 2 4 bf16
I8 [5] 5 5 i8
U8 [3] 3 3 u8
I32 [2,2] 4 16 i32
I64 [1] 1 8 i64
F32 [] 1 4 scalar
F32 [0,4] 0 0 empty
U8 [1] 1 1 255 bytes
EOF
    # and the shapes are those dtypes.json gives
    jget 'map { my $v = $j->{$_}; my @s; while (ref $v eq "ARRAY") { push @s, scalar @$v; $v = $v->[0] }
        ref $v eq "HASH" ? "$_ " . join(",", @{$v->{shape}}) : "$_ " . join(",", @s) } sort keys %$j' \
        "$VECTORS/dtypes.json" | sed 's/^n\{255\} /long /' | sort >want
    jget 'map { ($_->{name} =~ /^n{255}$/ ? "long" : $_->{name}) . " " . join(",", @{$_->{shape}}) } @{$j->{tensors}}' \
        j.json | sort >got
    diff want got
}

@test "eval-24 the vectors' values read back as their JSON gives them" {
    bf-tstat "$VECTORS/dtypes.bf" >s
    # NAME MEAN MIN MAX from the JSON; compared with a relative tolerance for F32 rounding
    jget 'map { my $k = $_; my @x = ($j->{$k});
        for (1 .. 3) { @x = map { ref $_ eq "ARRAY" ? @$_ : $_ } @x }
        @x = grep { !ref } @x;
        my $s = 0; $s += $_ for @x;
        my ($lo, $hi) = (sort { $a <=> $b } @x)[0, -1];
        @x ? ((length $k > 20 ? "long" : $k) . " " . ($s / @x) . " $lo $hi") : () } sort keys %$j' \
        "$VECTORS/dtypes.json" >want
    local name mean lo hi got
    while read -r name mean lo hi; do
        got=$(awk -v n="$name" '($1 == n || (n == "long" && length($1) == 255)) { print $4, $6, $7 }' s)
        # tolerance: F32 rounding relative to the largest magnitude (I32 and I64 pass through F32)
        awk -v g="$got" -v w="$mean $lo $hi" 'BEGIN { split(g, a, " "); split(w, b, " "); m = 0;
            for (i = 1; i <= 3; i++) { x = b[i] < 0 ? -b[i] : b[i]; if (x > m) m = x }
            for (i = 1; i <= 3; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > 1e-6 * m + 1e-30) exit 1 } }' ||
            fail "$name: mean min max $got, want $mean $lo $hi"
    done <want
    [[ $(wc -l <want) -ge 9 ]]
    # ternary codes: a and b hold the same codes as ternary.json, 3 of -1 ... summing to -3
    bf-tstat "$VECTORS/ternary.bf" >t
    [[ $(jget 'my $s = 0; $s += $_ for map { @$_ } @{$j->{codes}}; $s' "$VECTORS/ternary.json") -eq -3 ]]
    [[ $(awk '$1 == "a" || $1 == "b" { printf "%s %.6f %s %s\n", $1, $4 * $3, $6, $7 }' t) == $'a -3.000000 -1 1\nb -3.000000 -1 1' ]]
    [[ $(awk '$1 == "b.scale" { print $4 * 3, $6, $7 }' t) == "3.5 0.5 2" ]]
}

@test "eval-25 the model vectors: meta as their names say, and totals that add up" {
    local v name
    for v in "$VECTORS"/model-*.bf; do
        name=$(basename "$v" .bf)
        bf-eval --json "$v" >j.json
        [[ $(jget '$j->{kind}' j.json) == model ]]
        local m
        m=$(jget 'my $m = $j->{meta}; join "-", "model", $m->{norm}, $m->{act}, $m->{pos},
            ($m->{tie_embed} ? "tie" : ()), ($m->{subln} ? "subln" : ())' j.json)
        [[ $m == "$name" ]] || fail "$name: meta says $m"
        jget 'my ($p, $b) = (0, 0); $p += $_->{params}, $b += $_->{bytes} for @{$j->{tensors}};
            $p == $j->{totals}{params} && $b == $j->{totals}{bytes} && $b == 4 * $p ? "ok" : "bad"' j.json | grep -qx ok
    done
}

@test "eval-26 data-tiny.bf: a data stream of four I32 [6,8] tensors" {
    bf-eval --json "$VECTORS/data-tiny.bf" >j.json
    [[ $(jget '$j->{kind}' j.json) == data ]]
    [[ $(jmeta vocab j.json) == 20 && $(jmeta ctx j.json) == 8 ]]
    [[ $(jget 'join " ", map { "$_->{name}:$_->{dtype}:" . join(",", @{$_->{shape}}) } @{$j->{tensors}}' j.json) == \
        "train.x:I32:6,8 train.y:I32:6,8 val.x:I32:6,8 val.y:I32:6,8" ]]
}

@test "eval-27 payloads split in several chunks (bin8, bin16, bin32) read like whole ones" {
    bf-mkbad valid >a.bf
    bf-mkbad valid-chunked >b.bf
    ! cmp -s a.bf b.bf
    diff <(bf-eval a.bf) <(bf-eval b.bf)
    run -0 bf-eval --json <(bf-mkbad valid-bin8-bin16)
    assert_output --partial '"name":"bytes","dtype":"U8","shape":[300]'
}

@test "eval-28 the vector models on data-tiny.bf's val split: golden-metrics.json's loss (1e-5 relative), token accuracy and exact match" {
    local name got want gl ga ge wl wa we n=0
    for name in $(jget 'sort keys %$j' "$VECTORS/golden-metrics.json"); do
        bf-eval --data "$VECTORS/data-tiny.bf" --split val --json "$VECTORS/$name.bf" >j.json
        got=$(jget 'join " ", map { $j->{$_} } qw(loss token_acc exact)' j.json)
        want=$(jget 'join " ", map { $j->{"'"$name"'"}{$_} } qw(loss token_acc exact)' "$VECTORS/golden-metrics.json")
        read -r gl ga ge <<<"$got"
        read -r wl wa we <<<"$want"
        rel_close "$gl" "$wl" 1e-5 || fail "$name: loss $gl, golden $wl"
        rel_close "$ga" "$wa" 1e-9 && rel_close "$ge" "$we" 1e-9 || fail "$name: token_acc $ga exact $ge, golden $wa $we"
        n=$((n + 1))
    done
    [[ $n -eq 3 ]] || fail "$n models in golden-metrics.json"
}

# ------------------------------------------------ 3x inputs, pipes, output

@test "eval-30 stdin (no argument or '-') reads like a file" {
    local v=$VECTORS/model-rms-swiglu-rope.bf
    bf-eval "$v" >a
    bf-eval <"$v" >b
    bf-eval - <"$v" >c
    cat "$v" | bf-eval >d
    diff a b
    diff a c
    diff a d
}

@test "eval-31 bf-init | bf-eval: the totals of a known model" {
    # vocab 5, d 8, 1 layer, ff 32: 2·5·8 + 3·8 + 4·8·8 + 3·32·8 = 1128 parameters
    bf-init --vocab 5 --ctx 3 --d 8 --heads 2 --layers 1 --ff 32 | bf-eval --json >j.json
    [[ $(jget '$j->{totals}{params}' j.json) -eq 1128 ]]
    [[ $(jget '$j->{totals}{bytes}' j.json) -eq 4512 ]]
    [[ $(jget '$j->{totals}{ratio_to_f32}' j.json) == 1 ]]
    bf-init --vocab 5 --ctx 3 --d 8 --heads 2 --layers 1 --ff 32 | bf-eval >t
    grep -Eq '^total +1128 +4512 +32\.00$' t
    grep -qx 'ratio to F32: 1.00x' t
}

@test "eval-32 the table and --json agree, tensor by tensor" {
    local v=$VECTORS/model-layer-gelu-learned.bf
    bf-eval "$v" | sed -n '3,$p' | grep -v '^total \|^ratio' | awk '{ print $1, $2, $4, $5 }' >a
    bf-eval --json "$v" | jget 'map { "$_->{name} $_->{dtype} $_->{params} $_->{bytes}" } @{$j->{tensors}}' >b
    diff a b
}

@test "eval-36 --lineage: the programs that made the stream, oldest first, with their arguments" {
    bf-data modarith --p 5 >d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 | bf-ste-train --data d.bf --steps 1 -q | bf-quantize -o "q u.bf"
    bf-eval --lineage "q u.bf" >l
    [[ $(wc -l <l) -eq 3 ]] || fail "$(cat l)"
    grep -Eq '^1  bf-init [0-9.]+  --like d\.bf --d 16 --heads 2 --layers 1$' l || fail "$(sed -n 1p l)"
    grep -Eq '^2  bf-ste-train [0-9.]+  --data d\.bf --steps 1 -q$' l || fail "$(sed -n 2p l)"
    grep -Eq "^3  bf-quantize [0-9.]+  -o 'q u\.bf'\$" l || fail "$(sed -n 3p l)"
    bf-eval --lineage --json "q u.bf" >l.json
    [[ $(jget 'join " ", map { $_->{tool} } @{$j->{lineage}}' l.json) == "bf-init bf-ste-train bf-quantize" ]]
    [[ $(jget '$j->{lineage}[2]{args}[1]' l.json) == "q u.bf" ]]
    run3 bf-eval --lineage --data d.bf "q u.bf"
    assert_usage_error bf-eval
}

@test "eval-33 writes nothing but its report, and no file" {
    run3 bf-eval "$VECTORS/ternary.bf"
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ $(ls -A "$T" | sort | tr '\n' ' ') == "err out " ]] || fail "files: $(ls -A "$T")"
}

@test "eval-34 a reader that goes away (EPIPE) ends bf-eval quietly" {
    # a model of 2700 tensors: a table larger than a pipe holds
    bf-init --vocab 4 --ctx 2 --d 4 --heads 1 --layers 300 --ff 4 -o m.bf
    local -a st
    bf-eval m.bf 2>"$T/err" | head -n 1 >/dev/null
    st=("${PIPESTATUS[@]}")
    [[ ${st[0]} -eq 1 ]] || fail "exit status ${st[0]}, want 1"
    [[ ! -s $T/err ]] || fail "stderr: $(<"$T/err")"
}

@test "eval-35 the table is text: bf-eval writes it to a terminal" {
    command -v script >/dev/null || skip "script (util-linux) is needed for a terminal"
    local st=0
    script -qec "$BF_BIN/bf-eval $VECTORS/ternary.bf" /dev/null </dev/null >tty.out 2>&1 || st=$?
    [[ $st -eq 0 ]] || fail "exit status $st: $(cat tty.out)"
    grep -q '^kind: model' tty.out
}

# ------------------------------------------------ 4x --incremental

# same_metrics ARGS...: bf-eval ARGS with and without --incremental (and with
# --batch 1 and 3) report the same metrics: loss to 1e-6 (sums in another
# order), token accuracy and exact match identical.
same_metrics() {
    local ref inc b
    ref=$(bf-eval --json "$@" | jget 'join " ", map { $j->{$_} } qw(loss token_acc exact rows targets)')
    for b in '' '--batch 1' '--batch 3'; do
        # shellcheck disable=SC2086
        inc=$(bf-eval --json --incremental $b "$@" | jget 'join " ", map { $j->{$_} } qw(loss token_acc exact rows targets)')
        rel_close "${inc%% *}" "${ref%% *}" 1e-6 || fail "bf-eval $* --incremental $b: loss ${inc%% *}, batched ${ref%% *}"
        [[ ${inc#* } == "${ref#* }" ]] || fail "bf-eval $* --incremental $b: $inc, batched $ref"
    done
}

@test "eval-40 --incremental: the vector models' metrics as one batched forward gives them" {
    local f
    for f in "$VECTORS"/model-*.bf; do
        same_metrics --data "$VECTORS/data-tiny.bf" "$f"
    done
}

@test "eval-41 --incremental: learned positions and RoPE, F32 and ternary (integer kernels, TQ2 and TQ1, --fake-quant)" {
    bf-data seq --task reverse --min-len 3 --max-len 6 --n-train 60 --n-val 12 -o d.bf
    local pos
    for pos in learned rope; do
        bf-init --like d.bf --d 32 --heads 4 --layers 2 --pos $pos --seed 3 -o m.bf
        bf-ste-train --data d.bf --steps 20 --lr 3e-3 --threads 1 -q -o t.bf m.bf
        same_metrics --data d.bf t.bf
        bf-quantize t.bf >q2.bf
        same_metrics --data d.bf q2.bf
        same_metrics --data d.bf --fake-quant q2.bf
        bf-quantize --pack tq1 --per-row t.bf >q1.bf
        same_metrics --data d.bf --split train q1.bf
    done
}

@test "eval-42 --incremental: the same bytes out for the same threads, and for 1 and 2 threads the same metrics" {
    bf-data seq --task sort --min-len 4 --max-len 8 --n-train 40 --n-val 16 -o d.bf
    bf-init --like d.bf --d 32 --heads 2 --layers 2 --pos rope -o m.bf
    bf-quantize m.bf >q.bf
    local a b
    a=$(bf-eval --data d.bf --incremental --threads 2 q.bf)
    b=$(bf-eval --data d.bf --incremental --threads 2 q.bf)
    [[ $a == "$b" ]]
    b=$(bf-eval --data d.bf --incremental --threads 1 q.bf)
    [[ $a == "$b" ]] || fail "2 threads: $a; 1 thread: $b"
}

@test "eval-43 --fake-quant: ternary layers in float at every kernel level, the scalar level's loss to the last digit" {
    bf-data seq --task reverse --min-len 3 --max-len 6 --n-train 60 --n-val 12 -o d.bf
    bf-init --like d.bf --d 64 --heads 4 --layers 2 --seed 5 -o m.bf
    bf-ste-train --data d.bf --steps 30 --lr 3e-3 --threads 1 -q -o t.bf m.bf
    bf-quantize --keep-latent t.bf >q.bf
    local f s k
    f=$(bf-eval --data d.bf --json --fake-quant q.bf | jget '$j->{loss}')
    s=$(BF_KERNEL=scalar bf-eval --data d.bf --json --fake-quant q.bf | jget '$j->{loss}')
    k=$(bf-eval --data d.bf --json q.bf | jget '$j->{loss}')
    [[ $f == "$s" ]] || fail "--fake-quant: loss $f, at the scalar level $s"
    rel_close "$k" "$f" 1e-4 || fail "integer kernels $k against --fake-quant $f"
    [[ $k != "$f" ]] || fail "the integer kernels' loss $k is --fake-quant's to the last digit: not two paths"
}

@test "eval-45 --logprobs FILE: every position's log-probabilities; they sum to 1 a position and give bf-eval's loss; refusals" {
    bf-data seq --task sort --min-len 2 --max-len 4 --n-train 40 --n-val 16 -o d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 -o a.bf
    bf-quantize a.bf -o q.bf
    local m
    for m in a.bf q.bf; do
        bf-eval --json --data d.bf --batch 5 --logprobs lp.bf $m >e.json
        [[ $(bf-eval --json lp.bf | jget '$j->{kind}') == logprobs ]]
        [[ $(bf-eval --json lp.bf | jshape logprobs) == 16,$(jget '$j->{tokens} / 16' e.json),256 ]]
        # each position's probabilities sum to 1; the targets' give the loss bf-eval printed
        paste <(bf-dump logprobs lp.bf) <(bf-dump val.y d.bf | tr ' ' '\n') | awk -F'\t' -v want="$(jget '$j->{loss}' e.json)" '
            { n = split($1, lp, " "); s = 0; for (i = 1; i <= n; i++) s += exp(lp[i])
              if (s < 0.999 || s > 1.001) { print "a position sums to " s; exit 1 }
              if ($2 >= 0) { tot -= lp[$2 + 1]; k++ } }
            END { d = tot / k - want; if (d < 0) d = -d; if (d > 1e-5 * want) { print tot / k " against " want; exit 1 } }' ||
            fail "$m"
    done
    run3 bf-eval --logprobs lp.bf a.bf
    assert_usage_error bf-eval
    run3 bf-eval --data d.bf --incremental --logprobs lp.bf a.bf
    assert_usage_error bf-eval
}

@test "eval-50 --compare REF: a model against itself has KL 0 and no delta; against another, KL > 0 and REF's own metrics" {
    bf-data seq --task sort --min-len 2 --max-len 4 --n-train 40 --n-val 16 -o d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 -o a.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 --seed 2 -o b.bf
    bf-eval --json --data d.bf --compare a.bf a.bf >s.json
    [[ $(jget '$j->{kl}' s.json) == 0 ]] || rel_close "$(jget '$j->{kl}' s.json)" 0 1e-6
    [[ $(jget '$j->{ref_exact}' s.json) == $(jget '$j->{exact}' s.json) ]]
    bf-eval --json --data d.bf --compare b.bf a.bf >o.json
    lt 0 "$(jget '$j->{kl}' o.json)"
    [[ $(jget '$j->{ref_loss}' o.json) == $(bf-eval --json --data d.bf b.bf | jget '$j->{loss}') ]]
    bf-eval --data d.bf --compare b.bf a.bf | grep -q '^compare  kl '
    run3 bf-eval --compare b.bf a.bf
    assert_usage_error bf-eval
}
