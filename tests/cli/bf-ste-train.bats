#!/usr/bin/env bats
# bf-ste-train (bf-ste-train(1), bitforge(7)): help, usage errors, bad data, the
# log, every training flag's effect, determinism, -o atomicity, ternary
# models through the quantizer (STE), and learning: reverse strings, modular
# addition, and recovery of what post-training quantization lost.
#
# Families: 0x help and version, 1x usage errors, 2x bad input, 3x the log
# and the schedule, 4x flags and optimizers, 5x determinism and output,
# 6x ternary models, 7x learning, 8x resources, 9x hostile streams.

load helpers

# small shared inputs: modarith p 7 (49 pairs, vocab 9, ctx 4) and a model for it
small() {
    bf-data modarith --p 7 -o d.bf
    bf-init --like d.bf --d 32 --heads 2 --layers 1 -o m.bf
}

# cached FILE CMD…: runs CMD (writing $BATS_FILE_TMPDIR/FILE) once per file
cached() {
    local f=$BATS_FILE_TMPDIR/$1
    shift
    [[ -s $f ]] && return 0
    "$@" "$f.part" || return 1
    mv -f "$f.part" "$f"
}

# the README's task: reverse 3-6 digit strings; a 2-layer d 64 model trained
# 400 steps in float (about 10 s, made once, used by ste-70 and ste-72)
REV=$BATS_FILE_TMPDIR/rev.bf
REV_F32=$BATS_FILE_TMPDIR/rev-f32.bf
make_rev() { bf-data seq --task reverse --min-len 3 --max-len 6 -o "$1"; }
make_rev_f32() {
    bf-init --like "$REV" --d 64 --layers 2 --heads 4 |
        bf-ste-train --data "$REV" --steps 400 --lr 3e-3 --warmup 20 --batch 64 -q -o "$1"
}
rev_f32() { cached rev.bf make_rev && cached rev-f32.bf make_rev_f32; }


asan_build() { grep -aq __asan_init "$BF_BIN/bf-ste-train"; }

# ---------------------------------------------------------------- 0x help

@test "ste-01 --help prints usage on stdout and exits 0" {
    run3 bf-ste-train --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-ste-train' "$T/out"
    local f
    for f in --data --steps --batch --lr --wd --warmup --schedule --clip --beta1 --beta2 --eps --eval-every \
        --eval-batch --stop-exact --log --grokfast --grokfast-alpha --grokfast-lambda --grokfast-window --opt \
        --momentum --ns-steps --fallback --fallback-lr --strip --seed --threads --output --quiet --progress \
        --help --version adamw adam sgd muon muongrokfast; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
}

@test "ste-02 -h is --help; --version prints the version" {
    run -0 bf-ste-train -h
    assert_line --index 0 --partial 'usage: bf-ste-train'
    prints_version bf-ste-train
}

# ---------------------------------------------------------- 1x usage errors

# usage_cases ARGS-LINE…: "bf-ste-train --data d.bf LINE m.bf" is a usage
# error (exit 2, one line, no output) for each line
usage_cases() {
    local line
    local -a args
    for line in "$@"; do
        read -ra args <<<"$line"
        run3 bf-ste-train --data d.bf "${args[@]}" m.bf
        [[ $status -eq 2 ]] || fail "bf-ste-train $line: exit status $status, want 2 ($stderr)"
        [[ -z $(one_line_reason "$T/err" bf-ste-train) ]] || fail "bf-ste-train $line: stderr is not one line: $stderr"
        [[ ! -s $T/out ]] || fail "bf-ste-train $line: wrote to stdout"
    done
}

@test "ste-10 bad numbers, choices and options are usage errors" {
    small
    usage_cases '--steps -1' '--steps x' '--batch 0' '--lr x' '--lr -1' '--wd -1' '--warmup -2' '--schedule linear' \
        '--clip -1' '--beta1 1' '--eps x' '--eval-every -1' '--eval-batch 0' '--stop-exact 2' '--opt lion' \
        '--grokfast fast' '--threads 0' '--seed x' '--bogus' '-x' '--steps' 'd.bf' '--strip=1'
    run3 bf-ste-train --data d.bf --opt lion m.bf
    [[ $stderr == *adamw* && $stderr == *muongrokfast* && $stderr == *"'lion'"* ]]
    # --data is required
    run3 bf-ste-train m.bf
    assert_usage_error bf-ste-train
    [[ $stderr == *--data* ]]
}

@test "ste-11 Muon's flags without --opt muon|muongrokfast are usage errors; with it they work" {
    small
    usage_cases '--momentum 0.9' '--ns-steps 3' '--fallback sgd' '--fallback-lr 1e-3' '--opt adam --momentum 0.9' \
        '--opt sgd --ns-steps 4'
    run3 bf-ste-train --data d.bf --momentum 0.9 m.bf
    [[ $stderr == *--momentum* ]]
    run3 bf-ste-train --data d.bf --steps 2 -q --opt muon --momentum 0.9 --ns-steps 3 --fallback sgd --fallback-lr 1e-3 m.bf
    [[ $status -eq 0 && ! -s $T/err ]] || fail "status $status: $stderr"
    bf-eval "$T/out" >/dev/null
}

@test "ste-12 Grokfast and Adam settings that cannot apply are usage errors" {
    small
    usage_cases '--grokfast-alpha 0.9' '--grokfast-lambda 2' '--grokfast-window 10' '--grokfast off --grokfast-lambda 1' \
        '--grokfast ema --grokfast-window 10' '--grokfast ma --grokfast-alpha 0.9' '--opt sgd --beta1 0.8' \
        '--opt sgd --eps 1e-6' '--opt muon --fallback sgd --beta2 0.9'
}

# ------------------------------------------------------------ 2x bad input

# data_error ARGS…: bf-ste-train ARGS -o out.bf is exit 1 with one line, no
# output and no file; $stderr holds the message
data_error() {
    run3 bf-ste-train "$@" -q -o out.bf
    assert_data_error bf-ste-train
    [[ ! -s $T/out && ! -e out.bf ]] || fail "bf-ste-train $*: left output"
}

@test "ste-20 a data stream of the wrong kind, and a model that is data: exit 1, one line" {
    small
    data_error --data m.bf m.bf
    [[ $stderr == *"'model'"* && $stderr == *m.bf* ]]
    data_error --data d.bf d.bf
    [[ $stderr == *"'data'"* ]]
    data_error --data "$T/missing.bf" m.bf
    [[ $stderr == *missing.bf* ]]
    data_error --data d.bf "$T/missing.bf"
    [[ $stderr == *missing.bf* ]]
}

@test "ste-21 a model whose vocab differs from the data's: exit 1 naming both" {
    small
    bf-init --vocab 10 --ctx 4 --d 16 --heads 2 --layers 1 -o v.bf
    data_error --data d.bf v.bf
    [[ $stderr == *vocab* && $stderr == *9* && $stderr == *10* ]]
}

@test "ste-22 data rows longer than the model's ctx: exit 1" {
    bf-data seq --n-train 20 --n-val 5 -o s.bf
    bf-init --vocab 256 --ctx 12 --d 16 --heads 2 --layers 1 -o m12.bf
    data_error --data s.bf m12.bf
    [[ $stderr == *ctx* && $stderr == *13* && $stderr == *12* ]]
    # exactly ctx 13 fits
    bf-init --vocab 256 --ctx 13 --d 16 --heads 2 --layers 1 -o m13.bf
    bf-ste-train --data s.bf --steps 1 -q m13.bf | bf-eval >/dev/null
}

@test "ste-23 an empty train split: exit 1" {
    bf-data modarith --p 7 --frac 0 -o e.bf
    bf-init --like e.bf --d 16 --heads 2 --layers 1 -o m.bf
    data_error --data e.bf m.bf
    [[ $stderr == *train* && $stderr == *empty* ]]
    bf-data seq --n-train 0 --n-val 4 -o s.bf
    bf-init --like s.bf --d 16 --heads 2 --layers 1 -o n.bf
    data_error --data s.bf n.bf
    [[ $stderr == *empty* ]]
}

@test "ste-24 a non-finite weight in the model: exit 1 naming the tensor" {
    small
    bf-poke blk.0.w2 5 inf m.bf >bad.bf
    data_error --data d.bf bad.bf
    [[ $stderr == *"'blk.0.w2'"* && $stderr == *finite* ]]
    bf-poke tok_emb 0 nan m.bf >bad2.bf
    data_error --data d.bf bad2.bf
    [[ $stderr == *"'tok_emb'"* ]]
}

@test "ste-25 refuses to write a stream to a terminal (exit 2) before training" {
    small
    refuses_terminal bf-ste-train --data "$T/d.bf" --steps 100000 "$T/m.bf"
}

# ------------------------------------------------- 3x the log and the schedule

@test "ste-30 --log: one JSON object per step with step, loss, lr, grad_norm, seconds; val metrics at the end" {
    small
    bf-ste-train --data d.bf --steps 7 --log run.log -q m.bf >/dev/null
    [[ $(wc -l <run.log) -eq 7 ]]
    local k=0 line
    while IFS= read -r line; do
        k=$((k + 1))
        printf '%s' "$line" >l.json
        [[ $(jget '$j->{step}' l.json) -eq $k ]] || fail "line $k: $line"
        jget 'join ",", map { defined $j->{$_} && !ref $j->{$_} ? $_ : () } qw(step loss lr grad_norm seconds)' l.json |
            grep -qx 'step,loss,lr,grad_norm,seconds' || fail "line $k lacks a key: $line"
        jget '$j->{loss} > 0 && $j->{grad_norm} > 0 && $j->{seconds} >= 0 ? "ok" : "bad"' l.json | grep -qx ok
        if ((k < 7)); then
            [[ $(jget 'exists $j->{val_loss} || exists $j->{eval_seconds} ? 1 : 0' l.json) == 0 ]] ||
                fail "line $k has val metrics: $line"
        fi
    done <run.log
    # the last step evaluates the val split
    [[ $(jget 'join ",", map { defined $j->{$_} ? $_ : () } qw(val_loss val_token_acc val_exact)' l.json) == \
        val_loss,val_token_acc,val_exact ]]
    # the numbers are bf-eval's on the output model
    bf-ste-train --data d.bf --steps 7 -q m.bf >t.bf
    jget 'sprintf "%.6f %.6f", $j->{val_loss}, $j->{val_exact}' l.json >a
    bf-eval --data d.bf --json t.bf | jget 'sprintf "%.6f %.6f", $j->{loss}, $j->{exact}' >b
    diff a b
}

@test "ste-31 --log appends; --eval-every N logs every N steps with val metrics, and the last" {
    small
    bf-ste-train --data d.bf --steps 10 --eval-every 4 --log run.log -q m.bf >/dev/null
    [[ $(jget '$j->{step}' <(sed -n 1p run.log)) -eq 4 ]]
    [[ $(wc -l <run.log) -eq 3 ]] || fail "$(cat run.log)"
    [[ $(jget '$j->{step}' <(sed -n 3p run.log)) -eq 10 ]]
    [[ $(jget 'defined $j->{val_exact} ? 1 : 0' <(sed -n 2p run.log)) == 1 ]]
    # eval_seconds from the first evaluation on: part of seconds, and growing
    [[ $(jget 'exists $j->{eval_seconds} ? 1 : 0' <(sed -n 1p run.log)) == 1 ]]
    jget '$j->{eval_seconds} >= 0 && $j->{eval_seconds} <= $j->{seconds} ? "ok" : "bad"' <(sed -n 3p run.log) | grep -qx ok
    awk -v a="$(jget '$j->{eval_seconds}' <(sed -n 1p run.log))" -v b="$(jget '$j->{eval_seconds}' <(sed -n 3p run.log))" \
        'BEGIN { exit !(b >= a) }'
    bf-ste-train --data d.bf --steps 2 --log run.log -q m.bf >/dev/null
    [[ $(wc -l <run.log) -eq 5 ]]
}

@test "ste-32 --lr, --warmup and --schedule: the logged learning rate" {
    small
    bf-ste-train --data d.bf --steps 20 --lr 0.01 --warmup 4 --log w.log -q m.bf >/dev/null
    jget '$j->{lr}' <(sed -n 1p w.log) | awk '{ exit !($1 > 0.0025 * 0.999 && $1 < 0.0025 * 1.001) }'
    jget '$j->{lr}' <(sed -n 4p w.log) | awk '{ exit !($1 > 0.01 * 0.999 && $1 < 0.01 * 1.001) }'
    # cosine: down to lr/10 at the last step, falling all the way
    jget '$j->{lr}' <(sed -n 20p w.log) | awk '{ exit !($1 > 0.001 * 0.999 && $1 < 0.001 * 1.001) }'
    jget '$j->{lr}' <(sed -n 12p w.log) | awk '{ exit !($1 < 0.01 && $1 > 0.001) }'
    bf-ste-train --data d.bf --steps 20 --lr 0.01 --schedule constant --log c.log -q m.bf >/dev/null
    [[ $(for k in 1 10 20; do jget '$j->{lr}' <(sed -n ${k}p c.log); done | sort -u) == 0.01 ]]
}

@test "ste-33 --stop-exact stops at the first evaluation that reaches it" {
    small
    # chance is 1/7: the first evaluation (step 2) passes 1%
    bf-ste-train --data d.bf --steps 50 --eval-every 2 --stop-exact 0.01 --log s.log -q m.bf >t.bf
    [[ $(wc -l <s.log) -eq 1 && $(jget '$j->{step}' s.log) -eq 2 ]] || fail "$(cat s.log)"
    bf-eval t.bf >/dev/null
}

# ------------------------------------------------ 4x flags and optimizers

@test "ste-40 every optimizer runs and lowers the train loss" {
    small
    local before after o
    before=$(loss_of m.bf d.bf)
    for o in 'sgd --lr 0.5' 'adam --lr 1e-2' 'adamw --lr 1e-2 --wd 0.1' 'muon --lr 0.02' 'muongrokfast --lr 0.02'; do
        # shellcheck disable=SC2086
        bf-ste-train --data d.bf --steps 30 --threads 1 -q --opt $o m.bf >t.bf
        after=$(loss_of t.bf d.bf)
        lt "$after" "$(awk -v b="$before" 'BEGIN { print 0.9 * b }')" || fail "--opt $o: train loss $before -> $after"
    done
}

@test "ste-41 --steps 0 writes the model back unchanged in value (F32 and ternary)" {
    small
    bf-ste-train --data d.bf --steps 0 -q m.bf >z.bf
    diff <(bf-tstat m.bf) <(bf-tstat z.bf)
    bf-quantize --keep-latent --per-row m.bf >q.bf
    bf-ste-train --data d.bf --steps 0 -q q.bf >zq.bf
    diff <(bf-tstat q.bf) <(bf-tstat zq.bf)
    # the header's meta too; the lineage gains bf-ste-train
    diff <(bf-eval --json m.bf | jget '$j->{meta}') <(bf-eval --json z.bf | jget '$j->{meta}')
    grep -aq bf-ste-train z.bf
}

@test "ste-42 --wd shrinks the 2-D weights" {
    small
    bf-ste-train --data d.bf --steps 10 --lr 1e-2 -q --threads 1 m.bf | bf-tstat >a
    bf-ste-train --data d.bf --steps 10 --lr 1e-2 --wd 50 -q --threads 1 m.bf | bf-tstat >b
    local sa sb
    sa=$(awk '$1 == "blk.0.wq" { print $5 }' a)
    sb=$(awk '$1 == "blk.0.wq" { print $5 }' b)
    lt "$sb" "$(awk -v s="$sa" 'BEGIN { print 0.6 * s }')" || fail "std of blk.0.wq: $sa without --wd, $sb with --wd 50"
}

@test "ste-43 --clip bounds each step: with --clip 1e-6 and sgd at lr 1, no weight moves more than 3e-6 in 3 steps" {
    small
    bf-ste-train --data d.bf --steps 3 --opt sgd --lr 1 --clip 1e-6 -q m.bf >c.bf
    bf-ste-train --data d.bf --steps 3 --opt sgd --lr 1 --clip 0 -q m.bf >u.bf
    maxdiff() { paste <(bf-dump "$3" "$1" | tr ' ' '\n') <(bf-dump "$3" "$2" | tr ' ' '\n') |
        awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { print m + 0 }'; }
    local name d
    for name in tok_emb blk.0.wq blk.0.w2 head; do
        d=$(maxdiff m.bf c.bf $name)
        lt "$d" 3e-6 || fail "$name moved $d with --clip 1e-6"
    done
    d=$(maxdiff m.bf u.bf head)
    lt 1e-3 "$d" || fail "head moved only $d without clipping"
    # the log shows the norm before clipping
    bf-ste-train --data d.bf --steps 1 --opt sgd --lr 1 --clip 1e-6 --log g.log -q m.bf >/dev/null
    lt 1e-3 "$(jget '$j->{grad_norm}' g.log)"
}

@test "ste-44 --batch: a batch of the whole split ignores the seed; a smaller one follows it" {
    small
    bf-ste-train --data d.bf --steps 4 --batch 1000 --seed 1 --threads 1 -q m.bf | bf-tstat >a
    bf-ste-train --data d.bf --steps 4 --batch 1000 --seed 2 --threads 1 -q m.bf | bf-tstat >b
    diff a b
    bf-ste-train --data d.bf --steps 4 --batch 5 --seed 1 --threads 1 -q m.bf | bf-tstat >c
    bf-ste-train --data d.bf --steps 4 --batch 5 --seed 2 --threads 1 -q m.bf | bf-tstat >e
    ! diff -q c e >/dev/null
    ! diff -q a c >/dev/null
}

@test "ste-45 --beta1, --beta2, --eps, --grokfast each change the result; --eval-batch does not change the metrics" {
    small
    local base h args
    base=$(bf-ste-train --data d.bf --steps 6 --threads 1 -q m.bf | bf-tstat | awk '$1 == "blk.0.w1" { print $8 }')
    for args in '--beta1 0.5' '--beta2 0.5' '--eps 1e-2' '--grokfast ema' '--grokfast ma --grokfast-window 3' \
        '--grokfast ema --grokfast-lambda 5 --grokfast-alpha 0.5'; do
        # shellcheck disable=SC2086
        h=$(bf-ste-train --data d.bf --steps 6 --threads 1 -q $args m.bf | bf-tstat | awk '$1 == "blk.0.w1" { print $8 }')
        [[ $h != "$base" ]] || fail "$args changed nothing"
    done
    bf-ste-train --data d.bf --steps 3 --eval-batch 1 --log a.log -q m.bf >/dev/null
    bf-ste-train --data d.bf --steps 3 --eval-batch 1000 --log b.log -q m.bf >/dev/null
    [[ $(jget '$j->{val_exact}' <(tail -n 1 a.log)) == "$(jget '$j->{val_exact}' <(tail -n 1 b.log))" ]]
    jget '$j->{val_loss}' <(tail -n 1 a.log) >la
    jget '$j->{val_loss}' <(tail -n 1 b.log) >lb
    awk 'NR == FNR { a = $1; next } { d = a - $1; if (d < 0) d = -d; exit !(d <= 1e-5 * $1) }' la lb
}

@test "ste-46 --progress draws a progress line on stderr; -q silences it; no output by default" {
    small
    run3 bf-ste-train --data d.bf --steps 3 m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    run3 bf-ste-train --data d.bf --steps 3 --progress m.bf
    [[ $status -eq 0 ]]
    grep -aq 'step 3/3' "$T/err" || fail "no progress line: $stderr"
    run3 bf-ste-train --data d.bf --steps 3 --progress -q m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    run3 bf-ste-train --data d.bf --steps 3 --quiet m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
}

# ------------------------------------------------ 5x determinism and output

@test "ste-50 the same seed and threads give identical bytes; another seed other bytes" {
    small
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 3 --threads 2 -q m.bf >a.bf
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 3 --threads 2 -q m.bf >b.bf
    cmp a.bf b.bf
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 3 --threads 1 -q m.bf >c.bf
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 3 --threads 1 -q m.bf >e.bf
    cmp c.bf e.bf
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 4 --threads 2 -q m.bf | bf-tstat >f
    ! diff -q <(bf-tstat a.bf) f >/dev/null
    # the default seed is 1
    bf-ste-train --data d.bf --steps 5 --batch 8 --threads 1 -q m.bf | bf-tstat >g
    bf-ste-train --data d.bf --steps 5 --batch 8 --seed 1 --threads 1 -q m.bf | bf-tstat >h
    diff g h
}

@test "ste-51 a failing run leaves no file and keeps an existing one; -o /dev/null stays a device" {
    small
    bf-init --vocab 10 --ctx 4 --d 16 --heads 2 --layers 1 -o v.bf
    run3 bf-ste-train --data d.bf --steps 2 -o t.bf v.bf
    assert_data_error bf-ste-train
    [[ ! -e t.bf ]]
    echo precious >t.bf
    run3 bf-ste-train --data d.bf --steps 2 -o t.bf v.bf
    assert_data_error bf-ste-train
    [[ $(<t.bf) == precious ]]
    run3 bf-ste-train --data d.bf --steps 2 --lr x -o t.bf m.bf
    [[ $status -eq 2 && $(<t.bf) == precious ]]
    [[ -z $(find . -maxdepth 1 -name '.*.tmp*') ]]
    run3 bf-ste-train --data d.bf --steps 2 -o /dev/null m.bf
    [[ $status -eq 0 && ! -s $T/err ]]
    [[ -c /dev/null ]]
    # -o and stdout give the same model; stdin and '-' read like a file
    bf-ste-train --data d.bf --steps 2 -o t.bf m.bf
    bf-ste-train --data d.bf --steps 2 - <m.bf | bf-tstat >a
    diff <(bf-tstat t.bf) a
    bf-ste-train --data - --steps 2 m.bf <d.bf | bf-tstat >b
    diff a b
}

# ------------------------------------------------------- 6x ternary models

@test "ste-60 a ternary model stays ternary: W (TQ2), W.scale and W.latent, the rule kept" {
    small
    bf-quantize --keep-latent m.bf >q.bf
    bf-ste-train --data d.bf --steps 5 --lr 1e-2 -q q.bf >t.bf
    diff <(bf-tstat q.bf | awk '{ print $1, $2, $3 }') <(bf-tstat t.bf | awk '{ print $1, $2, $3 }')
    [[ $(bf-dump -m blk.0.wq t.bf) == '{"method":"absmean","per_row":false}' ]]
    # the latents moved, and W is their quantization
    [[ $(hash <(bf-tstat q.bf) blk.0.w1.latent) != "$(hash <(bf-tstat t.bf) blk.0.w1.latent)" ]]
    bf-dequant --from latent t.bf | bf-quantize | bf-tstat >r
    diff <(bf-tstat t.bf | grep -v '\.latent ') r
    # threshold and TQ1 keep theirs
    bf-quantize --keep-latent --method threshold --threshold 0.3 --pack tq1 m.bf >q1.bf
    bf-ste-train --data d.bf --steps 5 --lr 1e-2 -q q1.bf >t1.bf
    diff <(bf-tstat q1.bf | awk '{ print $1, $2, $3 }') <(bf-tstat t1.bf | awk '{ print $1, $2, $3 }')
    bf-dump -m blk.0.w3 t1.bf | jget '$j->{method} eq "threshold" && abs($j->{threshold} - 0.3) < 1e-6 ? "ok" : "bad"' |
        grep -qx ok
}

@test "ste-61 --strip drops the latents and keeps W and W.scale as the full output has them" {
    small
    bf-quantize --keep-latent m.bf >q.bf
    bf-ste-train --data d.bf --steps 5 --lr 1e-2 --threads 1 -q q.bf >full.bf
    bf-ste-train --data d.bf --steps 5 --lr 1e-2 --threads 1 -q --strip q.bf >strip.bf
    [[ $(bf-tstat strip.bf | grep -c '\.latent ') -eq 0 ]]
    diff <(bf-tstat full.bf | grep -v '\.latent ') <(bf-tstat strip.bf)
    # and it evaluates as the full model does
    [[ $(bf-eval --data d.bf --json strip.bf | jget '$j->{loss}') == "$(bf-eval --data d.bf --json full.bf | jget '$j->{loss}')" ]]
    # --strip on a float model changes nothing
    bf-ste-train --data d.bf --steps 2 --threads 1 -q --strip m.bf | bf-tstat >a
    bf-ste-train --data d.bf --steps 2 --threads 1 -q m.bf | bf-tstat >b
    diff a b
}

@test "ste-62 a ternary model without latents trains from scale·codes" {
    small
    bf-quantize m.bf >q.bf
    bf-ste-train --data d.bf --steps 0 -q q.bf >z.bf
    # unchanged in value: the same codes and scales, latents scale·codes' equivalent
    diff <(bf-tstat q.bf) <(bf-tstat z.bf | grep -v '\.latent ')
    bf-ste-train --data d.bf --steps 20 --lr 1e-2 -q q.bf >t.bf
    lt "$(loss_of t.bf d.bf)" "$(loss_of q.bf d.bf)"
}

# --------------------------------------------------------------- 7x learning

@test "ste-70 reverse, 2 layers, d 64: at least 95% val exact match within 400 steps" {
    rev_f32
    local e
    e=$(exact_of "$REV_F32" "$REV")
    awk -v e="$e" 'BEGIN { exit !(e >= 0.95) }' || fail "val exact $e after 400 steps"
}

@test "ste-71 modarith add p 23, 2 layers, d 64: the train split learned exactly in 120 full-batch steps" {
    bf-data modarith --op add --p 23 -o d.bf
    bf-init --like d.bf --d 64 --layers 2 --heads 4 |
        bf-ste-train --data d.bf --steps 120 --batch 512 --lr 3e-3 -q >t.bf
    [[ $(exact_of t.bf d.bf train) == 1 ]] || fail "train exact $(exact_of t.bf d.bf train)"
}

@test "ste-72 training through the quantizer recovers what post-training quantization lost" {
    rev_f32
    local f32 ptq ste
    f32=$(exact_of "$REV_F32" "$REV")
    bf-quantize --keep-latent "$REV_F32" >q.bf
    ptq=$(exact_of q.bf "$REV")
    awk -v a="$ptq" -v b="$f32" 'BEGIN { exit !(a < b - 0.3) }' || fail "quantization lost too little to test: $f32 -> $ptq"
    bf-ste-train --data "$REV" --steps 60 --lr 3e-3 --warmup 10 -q q.bf >t.bf
    ste=$(exact_of t.bf "$REV")
    awk -v a="$ste" -v b="$ptq" 'BEGIN { exit !(a > b + 0.3) }' || fail "val exact: F32 $f32, quantized $ptq, after STE $ste"
    # still ternary, and the integer kernels agree with training's view
    [[ $(bf-eval --json t.bf | jget 'scalar grep { $_->{dtype} eq "TQ2" } @{$j->{tensors}}') -eq 14 ]]
}

# ------------------------------------------------------------- 8x resources

@test "ste-80 under an address-space limit OpenBLAS cannot meet, bf-ste-train still ends (no hang)" {
    asan_build && skip "ASan needs an unlimited address space"
    small
    local st=0
    # 250 MB: ample for this model, too little for OpenBLAS's 128 MiB buffers (one per thread)
    (ulimit -v 250000 && exec timeout -k 1 3 bf-ste-train --data d.bf --steps 2 -q m.bf) >t.bf 2>err || st=$?
    [[ $st -ne 124 && $st -ne 137 ]] || fail "bf-ste-train hung under ulimit -v 250000 (killed after 3 s): $(head -c 300 err)"
    [[ $st -eq 0 ]] || { [[ $st -eq 1 && $(wc -l <err) -eq 1 && $(<err) == "bf-ste-train: "* ]] ||
        fail "exit status $st: $(<err)"; }
}

# ------------------------------------------------------- 9x hostile streams

@test "ste-90 every bf-mkbad case as --data (a file): exit 1, one matching line, no output" {
    small
    quick hostile_each file data "bf-ste-train --steps 1 -q --data {} $T/m.bf"
}

@test "ste-91 every bf-mkbad case as the model (a pipe): exit 1, one matching line, no output" {
    small
    quick hostile_each pipe model "bf-ste-train --steps 1 -q --data $T/d.bf {}"
}
