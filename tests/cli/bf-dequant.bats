#!/usr/bin/env bats
# bf-dequant (bf-dequant(1), bf-stream(5), bitforge(7)): help, usage errors, --from codes bit for
# bit against scale·codes computed here, pass-through tensors byte for byte,
# --from latent against the weights before quantization, missing parts,
# round trips through bf-quantize, -o atomicity, the terminal, hostile
# streams.
#
# Families: 0x help and version, 1x usage and input errors, 2x --from codes,
# 3x --from latent, 4x round trips and evaluation, 5x output, 9x hostile.

load helpers

FULL=(--vocab 13 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24 --norm layer --pos learned --subln)

is_block() { [[ $1 =~ ^blk\.[0-9]+\.w[qkvo123]$ ]]; }

# want_codes Q NAME: the bits of scale·codes of ternary NAME in Q, computed
# here from its codes and the bits of its scale(s): code 1 gives the scale's
# bits, -1 the same with the sign bit set, 0 the bits of +0
want_codes() {
    perl -e '
        my ($codes, $scales) = @ARGV;
        open my $c, "<", $codes or die; open my $s, "<", $scales or die;
        my @s = split " ", scalar <$s>;
        my $r = 0;
        while (<$c>) {
            my $sc = hex(@s == 1 ? $s[0] : $s[$r]);
            print join(" ", map { sprintf "%08x", $_ == 1 ? $sc : $_ == -1 ? $sc ^ 0x80000000 : 0 } split), "\n";
            $r++;
        }' <(bf-dump "$2" "$1") <(bf-dump -x "$2.scale" "$1")
}

# check_codes Q OUT: every ternary tensor of Q is, in OUT, the F32 scale·codes bit for bit
check_codes() {
    local name dtype n=0
    while read -r name dtype _; do
        [[ $dtype == TQ2 || $dtype == TQ1 ]] || continue
        diff <(want_codes "$1" "$name") <(bf-dump -x "$name" "$2") >/dev/null || fail "$name: not scale·codes bit for bit"
        [[ $(awk -v n="$name" '$1 == n { print $2 }' <(bf-tstat "$2")) == F32 ]]
        n=$((n + 1))
    done < <(bf-tstat "$1")
    ((n > 0)) || fail "no ternary tensor in $1"
}

# ---------------------------------------------------------------- 0x help

@test "deq-01 --help prints usage on stdout and exits 0" {
    run3 bf-dequant --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-dequant' "$T/out"
    local f
    for f in --from codes latent --output --help --version; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "deq-02 -h is --help; --version prints the version" {
    run -0 bf-dequant -h
    assert_line --index 0 --partial 'usage: bf-dequant'
    prints_version bf-dequant
}

# ------------------------------------------------- 1x usage and input errors

@test "deq-10 usage errors exit 2 with one line and no output" {
    bf-init "${FULL[@]}" | bf-quantize -o q.bf
    local line
    local -a args
    for line in '--from scales' '--from' '--bogus' '-x' 'q.bf' '--from=codes=1'; do
        read -ra args <<<"$line"
        run3 bf-dequant q.bf "${args[@]}"
        [[ $status -eq 2 ]] || fail "bf-dequant q.bf $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-dequant) ]] || fail "bf-dequant $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-dequant $line: wrote to stdout"
    done
    run3 bf-dequant --from scales q.bf
    [[ $stderr == *codes* && $stderr == *latent* && $stderr == *"'scales'"* ]]
}

@test "deq-11 a missing file, a data stream: exit 1, one line" {
    run3 bf-dequant "$T/missing.bf"
    assert_data_error bf-dequant
    [[ $stderr == *missing.bf* ]]
    bf-data modarith --p 5 -o d.bf
    run3 bf-dequant d.bf
    assert_data_error bf-dequant
    [[ $stderr == *"'data'"* ]]
    [[ ! -s $T/out ]]
}

@test "deq-12 a ternary tensor without its scale: exit 1 naming it" {
    bf-init "${FULL[@]}" | bf-quantize | bf-poke -d blk.1.wk.scale >bad.bf
    run3 bf-dequant bad.bf
    assert_data_error bf-dequant
    [[ $stderr == *"'blk.1.wk'"* && $stderr == *scale* ]]
}

# ------------------------------------------------------------ 2x --from codes

@test "deq-20 --from codes (the default): scale·codes bit for bit, TQ2 with one scale" {
    bf-init "${FULL[@]}" --seed 2 | bf-quantize >q.bf
    bf-dequant q.bf >a.bf
    check_codes q.bf a.bf
    bf-dequant --from codes q.bf >b.bf
    cmp <(bf-tstat a.bf) <(bf-tstat b.bf)
}

@test "deq-21 --from codes: TQ1 with a scale per row, and threshold scales" {
    bf-init "${FULL[@]}" --seed 3 -o m.bf
    bf-quantize --pack tq1 --per-row m.bf >q1.bf
    bf-dequant q1.bf >a.bf
    check_codes q1.bf a.bf
    bf-quantize --method threshold --threshold 0.7 m.bf >q2.bf
    bf-dequant q2.bf >b.bf
    check_codes q2.bf b.bf
}

@test "deq-22 every other tensor passes byte for byte; scales and latents leave; the order stays" {
    bf-init "${FULL[@]}" -o m.bf
    bf-quantize --keep-latent --include 'blk.0.*' m.bf >q.bf
    bf-dequant q.bf >a.bf
    bf-tstat m.bf >s0
    bf-tstat q.bf >sq
    bf-tstat a.bf >sa
    # the names of the original F32 model, in its order, all F32
    diff <(awk '{ print $1, $2, $3 }' s0) <(awk '{ print $1, $2, $3 }' sa)
    local name dtype
    while read -r name dtype _; do
        [[ $dtype == TQ2 || $name == *.scale || $name == *.latent ]] && continue
        [[ $(hash sa "$name") == "$(hash sq "$name")" ]] || fail "$name changed"
    done <sq
    # blk.1 was never quantized: it comes back as it was
    [[ $(hash sa blk.1.w2) == "$(hash s0 blk.1.w2)" ]]
    # the header's meta is kept, and the lineage gains bf-dequant
    diff <(bf-eval --json m.bf | jget '$j->{meta}') <(bf-eval --json a.bf | jget '$j->{meta}')
    grep -aq bf-dequant a.bf
}

@test "deq-23 a float model passes through unchanged" {
    bf-init "${FULL[@]}" -o m.bf
    bf-dequant m.bf >a.bf
    diff <(bf-tstat m.bf) <(bf-tstat a.bf)
    bf-dequant --from latent m.bf >b.bf
    diff <(bf-tstat m.bf) <(bf-tstat b.bf)
}

# ----------------------------------------------------------- 3x --from latent

@test "deq-30 --from latent gives back the weights before quantization (equal hashes)" {
    bf-init "${FULL[@]}" --seed 4 -o m.bf
    local args
    for args in '' '--pack tq1 --per-row' '--method threshold'; do
        # shellcheck disable=SC2086
        bf-quantize --keep-latent $args m.bf | bf-dequant --from latent >a.bf
        diff <(bf-tstat m.bf) <(bf-tstat a.bf) || fail "bf-quantize --keep-latent $args | bf-dequant --from latent"
    done
}

@test "deq-31 --from latent without latents: exit 1 naming the tensor, no file left" {
    bf-init "${FULL[@]}" | bf-quantize >q.bf
    run3 bf-dequant --from latent q.bf
    assert_data_error bf-dequant
    [[ $stderr == *"'blk.0.wq'"* && $stderr == *latent* ]]
    # one tensor lacking it is enough
    bf-init "${FULL[@]}" | bf-quantize --keep-latent | bf-poke -d blk.1.w3.latent >p.bf
    run3 bf-dequant --from latent -o a.bf p.bf
    assert_data_error bf-dequant
    [[ $stderr == *"'blk.1.w3'"* ]]
    [[ ! -e a.bf ]]
}

@test "deq-32 after training, --from latent returns W.latent and --from codes scale·codes" {
    bf-data modarith --p 5 -o d.bf
    bf-init --like d.bf --d 16 --heads 2 --layers 1 | bf-quantize --keep-latent |
        bf-ste-train --data d.bf --steps 5 --lr 1e-2 --threads 1 -q >t.bf
    bf-dequant --from latent t.bf >lat.bf
    bf-dequant t.bf >cod.bf
    bf-tstat t.bf >st
    local name
    for name in blk.0.wq blk.0.w2; do
        [[ $(hash <(bf-tstat lat.bf) $name) == "$(hash st $name.latent)" ]] || fail "$name is not W.latent"
    done
    check_codes t.bf cod.bf
    ! cmp -s <(bf-dump blk.0.w1 lat.bf) <(bf-dump blk.0.w1 cod.bf)
}

# ------------------------------------------------- 4x round trips, evaluation

@test "deq-40 threshold: quantize, dequantize, quantize gives the same codes and scales" {
    bf-init "${FULL[@]}" --seed 5 -o m.bf
    bf-quantize --method threshold --threshold 0.5 m.bf >q.bf
    bf-dequant q.bf | bf-quantize --method threshold --threshold 0.5 >r.bf
    diff <(bf-tstat q.bf) <(bf-tstat r.bf)
    # absmean keeps the codes (the scale becomes γ times the share of non-zero codes)
    bf-quantize --pack tq1 m.bf >q1.bf
    bf-dequant q1.bf | bf-quantize --pack tq1 >r1.bf
    local name
    for name in blk.0.wq blk.1.w1 blk.1.wo; do
        diff <(bf-dump $name q1.bf) <(bf-dump $name r1.bf) >/dev/null || fail "$name: codes changed in the round trip"
    done
}

@test "deq-41 with act_bits 0, the dequantized model computes what the ternary one does (--fake-quant)" {
    bf-data modarith --p 7 -o d.bf
    bf-init --like d.bf --d 24 --heads 2 --layers 2 --act-bits 0 | bf-quantize --per-row >q.bf
    bf-dequant q.bf >f.bf
    local a b
    a=$(bf-eval --data d.bf --fake-quant --json q.bf | jget '$j->{loss}')
    b=$(bf-eval --data d.bf --json f.bf | jget '$j->{loss}')
    awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * b) }' ||
        fail "loss $a for the ternary model, $b dequantized"
}

# ----------------------------------------------------------------- 5x output

@test "deq-50 the same input gives the same bytes; stdin, '-' and a file agree" {
    bf-init "${FULL[@]}" | bf-quantize --keep-latent -o q.bf
    bf-dequant q.bf >a.bf
    bf-dequant q.bf >b.bf
    cmp a.bf b.bf
    bf-dequant <q.bf >c.bf
    bf-dequant - <q.bf >d.bf
    cat q.bf | bf-dequant >e.bf
    cmp c.bf e.bf
    diff <(bf-tstat a.bf) <(bf-tstat c.bf)
    diff <(bf-tstat a.bf) <(bf-tstat d.bf)
}

@test "deq-51 a failing run: no file, an existing file kept, stdout without a trailer" {
    # 2 MB of tok_emb pass first: more than the writer holds back
    bf-init --vocab 2000 --ctx 6 --d 256 --heads 2 --layers 2 | bf-quantize >q.bf
    run3 bf-dequant --from latent -o a.bf q.bf
    assert_data_error bf-dequant
    [[ ! -e a.bf ]]
    echo precious >a.bf
    run3 bf-dequant --from latent -o a.bf q.bf
    assert_data_error bf-dequant
    [[ $(<a.bf) == precious ]]
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
    run3 bf-dequant --from latent q.bf
    assert_data_error bf-dequant
    cp "$T/out" partial.bf
    run3 bf-eval partial.bf
    assert_data_error bf-eval
}

@test "deq-52 -o FILE and -o /dev/null (still a character device)" {
    bf-init "${FULL[@]}" | bf-quantize -o q.bf
    run3 bf-dequant -o a.bf q.bf
    [[ $status -eq 0 && ! -s $T/out && ! -s $T/err ]]
    diff <(bf-tstat a.bf) <(bf-dequant q.bf | bf-tstat)
    run3 bf-dequant -o /dev/null q.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ -c /dev/null ]]
}

@test "deq-53 refuses to write a stream to a terminal (exit 2)" {
    bf-init "${FULL[@]}" | bf-quantize -o q.bf
    refuses_terminal bf-dequant "$T/q.bf"
}

# ------------------------------------------------------- 9x hostile streams

@test "deq-90 every bf-mkbad case as a model file (--from latent): exit 1, one matching line, no valid output" {
    quick hostile_each file model 'bf-dequant --from latent {}' streaming
}
