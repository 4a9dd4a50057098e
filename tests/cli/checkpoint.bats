#!/usr/bin/env bats
# Checkpoints and resume (--state, --state-every, --resume) for the trainers
# that share the training loop, bf-ste-train and bf-muon (recursive models'
# deep supervision too), for bf-bake (--pursuit too), bf-halfbake (between iterations), and
# for bf-svf's train and mix: a run stopped by
# SIGTERM or SIGINT (its state saved) or killed by SIGKILL (the last
# checkpoint kept), then resumed, writes the same tensors, byte for byte, as
# a run that was never stopped; a state that does not belong to the run is
# one clear line.
#
# Families: 0x usage, 1x stop and resume (15-17: runs that diverge,
# --on-nan), 2x states that do not fit, 3x bf-svf, 4x bf-bake and bf-halfbake.

load helpers

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --tasks copy,reverse --min-len 2 --max-len 4 --n-train 400 --n-val 40 -o d.bf
    bf-data seq --tasks copy,sort --min-len 2 --max-len 4 --n-train 400 --n-val 40 -o d2.bf
    bf-init --like d.bf --d 16 --layers 1 --heads 2 --ff 32 -o i.bf
    bf-quantize --keep-latent i.bf -o q.bf
    bf-ste-train -q --data d.bf --steps 200 --threads 1 -o m.bf q.bf
    bf-data seq --task reverse --prompt "Reverse: " --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 3 -o rev.bf
    bf-data seq --task copy --prompt "Copy: " --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 4 -o copy.bf
    bf-svf train -q --kind scales --targets all --data rev.bf --steps 5 --name a --threads 1 -o ea.bf m.bf
    bf-svf train -q --kind scales --targets all --data copy.bf --steps 5 --name b --threads 1 -o eb.bf m.bf
    bf-data seq --task reverse --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 5 -o bare.bf
    bf-data seq --task sort --min-len 2 --max-len 4 --n-train 200 --n-val 30 --seed 6 -o bsort.bf
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

# stop_run SIG STATE CMD…: runs CMD in the background, sends SIG once STATE
# exists (its first checkpoint), waits; $status is CMD's exit status
stop_run() {
    local sig=$1 state=$2 p i
    shift 2
    rm -f "$state"
    "$@" 2>"$T/err" &
    p=$!
    for ((i = 0; i < 400; i++)); do [[ -s $state ]] && break; sleep 0.05; done
    [[ -s $state ]] || { kill -KILL $p; fail "no checkpoint within 20 s"; }
    sleep 0.05
    kill "-$sig" $p || fail "the run ended before the signal: make it longer"
    status=0
    wait $p || status=$?
    stderr=$(<"$T/err")
}

# same_tensors A B: the two model streams hold the same tensors, byte for byte
same_tensors() { cmp <(bf-tstat "$1") <(bf-tstat "$2") || fail "$1 and $2 hold different tensors"; }

@test "ckpt-01 --state-every without --state is a usage error; --help documents the three flags" {
    run3 bf-ste-train --data "$(F d.bf)" --state-every 5 "$(F q.bf)"
    assert_usage_error bf-ste-train
    run3 bf-ste-train --data "$(F d.bf)" --state s.st --state-every 0 "$(F q.bf)"
    assert_usage_error bf-ste-train
    for p in bf-ste-train bf-muon; do
        for f in --state --state-every --resume; do $p --help | grep -q -- "$f" || fail "$p --help: no $f"; done
    done
}

@test "ckpt-10 bf-ste-train, ternary, adamw: SIGTERM saves the state and exits 1 without output; --resume gives the same tensors" {
    local run=(bf-ste-train -q --data "$(F d.bf)" --steps 4000 --batch 16 --threads 1)
    "${run[@]}" -o full.bf "$(F q.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F q.bf)"
    [[ $status -eq 1 ]] || fail "status $status: $stderr"
    [[ $stderr == "bf-ste-train: interrupted after step "*"; its state is saved in s.st; --resume s.st continues" ]] ||
        fail "$stderr"
    [[ ! -e out.bf ]] || fail "an output was written"
    [[ $(bf-eval --json s.st | jget '$j->{kind}') == state ]]
    # resumed, and checkpointing on into the same file
    "${run[@]}" --resume s.st --state s.st -o out.bf "$(F q.bf)"
    same_tensors full.bf out.bf
}

@test "ckpt-11 bf-ste-train, Muon after a Grokfast MA filter, EMA, evaluations: SIGKILL between checkpoints, resumed from the last" {
    local run=(bf-ste-train -q --data "$(F d.bf)" --steps 4000 --batch 16 --threads 1 --opt muongrokfast --grokfast ma
               --grokfast-window 7 --ema 0.9 --eval-every 150 --warmup 30)
    "${run[@]}" -o full.bf "$(F q.bf)"
    stop_run KILL s.st "${run[@]}" --state s.st --state-every 250 -o out.bf "$(F q.bf)"
    [[ $status -eq 137 && ! -e out.bf ]] || fail "status $status"
    step=$(bf-eval --json s.st | jget '$j->{meta}{step}')
    (( step % 250 == 0 && step < 4000 )) || fail "the state is at step $step"
    "${run[@]}" --resume s.st -o out.bf "$(F q.bf)"
    same_tensors full.bf out.bf
}

@test "ckpt-12 bf-muon --preset phase5 (Grokfast EMA, KL to the input): SIGINT, resumed: the same tensors" {
    local run=(bf-muon -q --preset phase5 --data "$(F d.bf)" --steps 2400 --batch 16 --threads 1)
    "${run[@]}" -o full.bf "$(F q.bf)"
    stop_run INT s.st "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F q.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after step"* && ! -e out.bf ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf "$(F q.bf)"
    same_tensors full.bf out.bf
}

@test "ckpt-13 a float model, a state every step, resumed twice: the same tensors" {
    local run=(bf-ste-train -q --data "$(F d.bf)" --steps 40 --batch 16 --threads 1 --seed 3)
    "${run[@]}" -o full.bf "$(F i.bf)"
    "${run[@]}" --steps 40 --state s.st --state-every 1 -o out.bf "$(F i.bf)"
    same_tensors full.bf out.bf   # checkpointing changes nothing
    [[ $(bf-eval --json s.st | jget '$j->{meta}{step}') == 39 ]]   # none after the last step
    "${run[@]}" --resume s.st -o again.bf "$(F i.bf)"
    same_tensors full.bf again.bf
}

@test "ckpt-14 a recursive model (deep supervision, the rolling batch and its states carried): SIGTERM, then SIGKILL, resumed: the same tensors" {
    bf-data sudoku --size 4 --holes 6 --n-train 300 --n-val 30 -o su.bf
    bf-init --like su.bf --d 32 --heads 2 --layers 1 --attn full --recursion 2,2,4 -o tr.bf
    local run=(bf-ste-train -q --data su.bf --steps 600 --batch 32 --threads 1 --eval-every 100)
    "${run[@]}" -o full.bf tr.bf
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 50 -o out.bf tr.bf
    [[ $status -eq 1 && $stderr == *"interrupted after step"* ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf tr.bf
    same_tensors full.bf out.bf
    rm -f out.bf
    stop_run KILL s.st "${run[@]}" --state s.st --state-every 30 -o out.bf tr.bf
    [[ $status -eq 137 ]] || fail "status $status"
    "${run[@]}" --resume s.st -o out.bf tr.bf
    same_tensors full.bf out.bf
}

@test "ckpt-15 a diverging run stops at the step that is not finite, naming it; the last good state stays and resumes to the same stop" {
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 50 --threads 1 --opt sgd --lr 1e3 --clip 0 --state s.st --state-every 1 \
        -o out.bf "$(F i.bf)"
    assert_data_error bf-ste-train
    [[ $stderr =~ (loss|gradient)\ is\ not\ finite\ at\ step\ ([0-9]+) ]] || fail "$stderr"
    local bad=${BASH_REMATCH[2]} first=$stderr
    [[ ! -e out.bf ]]
    step=$(bf-eval --json s.st | jget '$j->{meta}{step}')
    (( step < bad )) || fail "the state is at step $step, the run failed at $bad"
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 50 --threads 1 --opt sgd --lr 1e3 --clip 0 --resume s.st "$(F i.bf)"
    [[ $status -eq 1 && $stderr == "$first" ]] || fail "resumed: $stderr"
}

@test "ckpt-16 --on-nan: stop (the default) names the step; skip passes such steps by, logs them, and says how many" {
    bf-poke blk.0.attn_norm.w 0 1e38 "$(F i.bf)" >huge.bf
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 5 --threads 1 huge.bf
    assert_data_error bf-ste-train
    [[ $stderr == *"loss is not finite at step 1"* ]]
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 5 --threads 1 --on-nan skip --log sk.log -o out.bf huge.bf
    [[ $status -eq 0 && $stderr == "bf-ste-train: passed by 5 of 5 steps whose loss or gradient was not finite" ]] ||
        fail "status $status: $stderr"
    [[ $(head -1 sk.log | jget 'defined $j->{loss} ? "a number" : "null"') == null ]]
    same_tensors huge.bf out.bf
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 5 --on-nan maybe huge.bf
    assert_usage_error bf-ste-train
}

@test "ckpt-17 --on-nan in bf-bake, bf-halfbake and bf-svf train: stop names the step; skip passes such steps by and says how many" {
    # an adapter at alpha 1e6 and lr 1e6 overflows the student within a few
    # steps (the teacher, the input model, stays finite); a norm weight of
    # 1e38 overflows every forward of bf-svf's model
    local bake=(--prompt "Reverse: " --data "$(F bare.bf)" --lora --alpha 1e6 --lr 1e6 --steps 5 --threads 1)
    run3 bf-bake -q "${bake[@]}" "$(F i.bf)"
    assert_data_error bf-bake
    [[ $stderr =~ "the student's loss is not finite at step "[2-5]$ || $stderr =~ "gradient is not finite at step "[1-5]$ ]] || fail "$stderr"
    run3 bf-bake -q "${bake[@]}" --on-nan skip --log b.log -o b.bf "$(F i.bf)"
    [[ $status -eq 0 && $stderr =~ ^"bf-bake: passed by "[1-4]" of 5 steps whose loss or gradient was not finite"$ ]] ||
        fail "status $status: $stderr"
    [[ $(grep -c '"skipped":true' b.log) -eq $(sed 's/.*passed by \([0-9]*\).*/\1/' <<<"$stderr") ]]
    run3 bf-halfbake -q "${bake[@]}" --iterations 2 "$(F i.bf)"
    assert_data_error bf-halfbake
    [[ $stderr == *"not finite at step "[1-5] ]] || fail "$stderr"
    run3 bf-halfbake -q "${bake[@]}" --iterations 2 --on-nan skip -o h.bf "$(F i.bf)"
    [[ $status -eq 0 && $stderr =~ ^"bf-halfbake: passed by "[1-9]" of 10 steps whose loss or gradient was not finite"$ ]] ||
        fail "status $status: $stderr"
    bf-poke blk.0.attn_norm.w 0 1e38 "$(F i.bf)" >huge.bf
    run3 bf-svf train -q --data "$(F rev.bf)" --steps 5 --threads 1 huge.bf
    assert_data_error bf-svf
    [[ $stderr == "bf-svf: the loss is not finite at step 1" ]] || fail "$stderr"
    run3 bf-svf train -q --data "$(F rev.bf)" --steps 5 --threads 1 --on-nan skip --log e.log -o e.bf huge.bf
    [[ $status -eq 0 && $stderr == "bf-svf: passed by 5 of 5 steps whose loss or gradient was not finite" ]] || fail "status $status: $stderr"
    [[ $(grep -c '"loss":null,"skipped":true,"grad_norm":null' e.log) -eq 5 ]]
    run3 bf-svf mix --on-nan skip --experts e.bf --data "$(F rev.bf)" "$(F i.bf)"
    assert_usage_error bf-svf
    run3 bf-bake "${bake[@]}" --on-nan never "$(F i.bf)"
    assert_usage_error bf-bake
}

@test "ckpt-18 SIGHUP (the terminal closed) and SIGUSR1 save the state too; a SIGHUP ignored on entry (nohup) stays ignored" {
    local run=(bf-ste-train -q --data "$(F d.bf)" --steps 4000 --batch 16 --threads 1)
    for sig in HUP USR1; do
        stop_run $sig s.st "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F q.bf)"
        [[ $status -eq 1 && $stderr == *"interrupted after step"*"--resume s.st continues" && ! -e out.bf ]] ||
            fail "SIG$sig: status $status: $stderr"
    done
    # as nohup leaves it: the hangup passes by, and the run goes on to a TERM
    rm -f s.st
    bash -c 'trap "" HUP; exec "$@"' - "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F q.bf)" 2>"$T/err" &
    local p=$! i
    for ((i = 0; i < 400; i++)); do [[ -s s.st ]] && break; sleep 0.05; done
    kill -HUP $p || fail "the run ended before the signal"
    sleep 0.3
    kill -TERM $p || fail "SIGHUP ignored on entry ended the run: $(<"$T/err")"
    status=0
    wait $p || status=$?
    [[ $status -eq 1 && ! -e out.bf ]] && grep -q "interrupted after step" "$T/err" || fail "status $status: $(<"$T/err")"
}

@test "ckpt-20 a state for another model, data, program or settings, or not a state: exit 1, one line, no output" {
    bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --state s.st --state-every 10 -o /dev/null "$(F q.bf)" ||
        true
    [[ -s s.st ]]
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume s.st "$(F i.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"another model"* ]]
    run3 bf-ste-train -q --data "$(F d2.bf)" --steps 30 --batch 16 --threads 1 --resume s.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"other data"* ]]
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 31 --batch 16 --threads 1 --resume s.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"made with steps 30; this run has steps 31"* ]]
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --lr 2e-3 --resume s.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"lr 0.001"*"lr 0.002"* ]]
    run3 bf-muon -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume s.st "$(F q.bf)"
    assert_data_error bf-muon
    [[ $stderr == *"made by bf-ste-train, not bf-muon"* ]]
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume "$(F q.bf)" "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"not a training state"* ]]
    head -c 200 s.st >cut.st
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume cut.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"cut.st: truncated"* && ! -s $T/out ]]
    bf-poke params 3 nan s.st >nan.st
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume nan.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"not finite"* ]]
    bf-poke -d optim.v s.st >nov.st
    run3 bf-ste-train -q --data "$(F d.bf)" --steps 30 --batch 16 --threads 1 --resume nov.st "$(F q.bf)"
    assert_data_error bf-ste-train
    [[ $stderr == *"no 'optim.v'"* ]]
}

@test "ckpt-30 bf-svf train (row scales on a ternary model): SIGTERM, resumed: the same expert, byte for byte" {
    local run=(bf-svf train -q --kind scales --targets all --data "$(F rev.bf)" --steps 8000 --batch 8 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 400 -o out.bf "$(F m.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after step"* && ! -e out.bf ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    cmp <(bf-tstat full.bf) <(bf-tstat out.bf)
    # an svf expert's state is not a row-scales expert's
    run3 bf-svf train -q --targets all --data "$(F rev.bf)" --steps 8000 --batch 8 --threads 1 --resume s.st "$(F m.bf)"
    assert_data_error bf-svf
    [[ $stderr == *"s.st: the state was made with"*"params"* ]] || fail "$stderr"
}

@test "ckpt-31 bf-svf train --method reinforce with --kl: SIGKILL, resumed from the last checkpoint: the same expert" {
    local run=(bf-svf train -q --method reinforce --kl 0.1 --max-new 6 --targets mlp --data "$(F rev.bf)" --steps 4000
               --batch 4 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run KILL s.st "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F m.bf)"
    [[ $status -eq 137 ]] || fail "status $status"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    cmp <(bf-tstat full.bf) <(bf-tstat out.bf)
}

@test "ckpt-32 bf-svf mix: SIGTERM between iterations, resumed: the same mixture; --state with apply is a usage error" {
    local run=(bf-svf mix -q --experts "$(F ea.bf),$(F eb.bf)" --data "$(F rev.bf)" --iterations 80 --population 8 --elite 2
               --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 4 -o out.bf "$(F m.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after iteration"* ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    cmp <(bf-tstat full.bf) <(bf-tstat out.bf)
    run3 bf-svf apply --expert "$(F ea.bf)" --state s.st "$(F m.bf)"
    assert_usage_error bf-svf
}

@test "ckpt-40 bf-bake --lora with sampled trajectories and a keep set: SIGTERM, resumed: the same model; --full: SIGKILL, the same" {
    local run=(bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --keep "$(F d.bf)" --lora --samples 1 --questions 16
               --max-new 5 --steps 2000 --batch 8 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 100 -o out.bf "$(F m.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after step"* && ! -e out.bf ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    run=(bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --full --steps 5000 --batch 8 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run KILL s.st "${run[@]}" --state s.st --state-every 200 -o out.bf "$(F m.bf)"
    [[ $status -eq 137 ]] || fail "status $status"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    # a --full state is not a --lora run's
    run3 bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --lora --steps 5000 --batch 8 --threads 1 --resume s.st "$(F m.bf)"
    assert_data_error bf-bake
    [[ $stderr == *"s.st: the state was made with"* ]] || fail "$stderr"
}

@test "ckpt-42 bf-bake --pursuit: a state holds the round and its teacher; resumed in a later round, --lora and --full: the same model" {
    # the last state a whole run leaves is from its last round: resuming from
    # it is what a run killed after that checkpoint does
    local run=(bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --lora --pursuit 2 --steps 40 --batch 8 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    "${run[@]}" --state s.st --state-every 15 -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    [[ $(bf-eval --json s.st | jget '$j->{meta}{vars}{"pursuit.round"}') == 2 ]]
    "${run[@]}" --resume s.st -o res.bf "$(F m.bf)"
    same_tensors full.bf res.bf
    # SIGTERM in the first round, resumed there
    rm -f out.bf
    run=(bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --full --pursuit 1 --steps 3000 --batch 8 --threads 1)
    "${run[@]}" -o full.bf "$(F m.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 100 -o out.bf "$(F m.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after step"* && ! -e out.bf ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    # another number of rounds, or no pursuit: one line
    run3 bf-bake -q --prompt "Reverse: " --data "$(F bare.bf)" --full --pursuit 2 --steps 3000 --batch 8 --threads 1 --resume s.st "$(F m.bf)"
    assert_data_error bf-bake
    [[ $stderr == *"s.st: the state's 'pursuit.rounds' is 1, outside [2, 2]" ]] || fail "$stderr"
}

@test "ckpt-41 bf-halfbake, an A/B cycle with a keep set: SIGTERM waits for the iteration, SIGKILL keeps the last; resumed: the same model" {
    local run=(bf-halfbake -q --prompt "Reverse: " --data "$(F bare.bf)" --prompt-b "Sort: " --data-b "$(F bsort.bf)"
               --keep "$(F d.bf)" --iterations 36 --plateau 1 --steps 60 --batch 8 --threads 1)
    "${run[@]}" --log full.log -o full.bf "$(F m.bf)"
    stop_run TERM s.st "${run[@]}" --state s.st --state-every 1 --log out.log -o out.bf "$(F m.bf)"
    [[ $status -eq 1 && $stderr == *"interrupted after iteration"* && ! -e out.bf ]] || fail "status $status: $stderr"
    "${run[@]}" --resume s.st --log out.log -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    cmp full.log out.log   # the log goes on where it stopped: the same lines
    rm -f out.bf
    stop_run KILL s.st "${run[@]}" --state s.st --state-every 2 -o out.bf "$(F m.bf)"
    "${run[@]}" --resume s.st -o out.bf "$(F m.bf)"
    same_tensors full.bf out.bf
    run3 bf-halfbake --adapter x.bf --state s.st "$(F m.bf)"
    assert_usage_error bf-halfbake
}
