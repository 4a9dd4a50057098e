#!/usr/bin/env bats
# Running as an MPI job (bitforge(7), "Running under MPI"): `mpirun -np 2`
# gives the model one process gives, to the order of float additions, and
# the same bytes on a rerun; rank 0 alone writes; inputs reach every rank
# through rank 0 (pipes too); an error ends the job with one line; a
# stopped job resumes.
#
# Families: 0x the build, 1x trainers against one process, 2x evaluation
# and search, 3x what is written and where, 4x errors, 5x checkpoints.

load helpers

# The tolerance against one process: the ranks add their gradients in
# another order than one process adds its rows', and training amplifies a
# last-bit difference step by step (bench/mpi-drift: on a 2-layer model at lr
# 3e-3, at most 2e-7 after 50 steps and 2e-5 after 100, up to 2e-2 after
# 200); these runs are short enough to stay within it.
LOSS_TOL=1e-3

# (the build records its MPI flags beside its programs)
has_mpi() { grep -qs BF_HAVE_MPI "$BF_BIN/../obj/mpi-flags"; }

setup_file() {
    cd "$BATS_FILE_TMPDIR" || return 1
    bf-data seq --task reverse --min-len 3 --max-len 5 --n-train 512 --n-val 64 -o rev.bf
    # a context for longer rows, so that a prompt fits before rev.bf's
    bf-data seq --task reverse --min-len 3 --max-len 12 --n-train 8 --n-val 0 -o wide.bf
    bf-init --like wide.bf --d 32 --layers 2 --heads 2 --ff 64 -o m.bf
}

setup() {
    bf_setup
    command -v mpirun >/dev/null || skip "mpirun is not installed (make deps)"
    has_mpi || skip "built without MPI (mpicc was missing at build time)"
    # OpenMPI refuses root unless told; the ranks share the 2 cores
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # OpenMPI's own allocations outlive MPI_Finalize: not ours to report
    grep -aq __asan_init "$BF_BIN/bf-eval" && export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    return 0
}

F() { echo "$BATS_FILE_TMPDIR/$1"; }

# job CMD…: CMD as a job of 2 ranks (one thread each), never longer than 2 minutes
job() { timeout 120 mpirun -q -np 2 --oversubscribe --bind-to none "$@"; }

# same_tensors A B: the two streams hold the same tensors, byte for byte
same_tensors() { cmp <(bf-tstat "$1") <(bf-tstat "$2") || fail "$1 and $2 hold different tensors"; }

# close_to_one A B: A's val loss within LOSS_TOL of B's, exact match within 1 point
close_to_one() {
    local la lb ea eb
    la=$(loss_of "$1" "$(F rev.bf)" val) lb=$(loss_of "$2" "$(F rev.bf)" val)
    ea=$(exact_of "$1" "$(F rev.bf)") eb=$(exact_of "$2" "$(F rev.bf)")
    rel_close "$la" "$lb" "$LOSS_TOL" || fail "val loss $la (2 ranks) against $lb (one process)"
    awk -v a="$ea" -v b="$eb" 'BEGIN { d = a - b; exit !(d <= 0.01 && d >= -0.01) }' ||
        fail "exact $ea (2 ranks) against $eb (one process)"
}

@test "mpi-00 when mpicc is installed, the programs are built with MPI" {
    command -v mpicc >/dev/null || skip "no mpicc"
    has_mpi
    ldd "$BF_BIN/bf-ste-train" | grep -q libmpi
}

@test "mpi-10 bf-ste-train: 2 ranks give one process's model; a rerun the same tensors" {
    local args="--data $(F rev.bf) --steps 60 --batch 32 --lr 3e-3 --warmup 5 --eval-every 20 -q"
    bf-ste-train $args --threads 2 -o one.bf "$(F m.bf)"
    job bf-ste-train $args --threads 1 -o two.bf "$(F m.bf)"
    job bf-ste-train $args --threads 1 -o again.bf "$(F m.bf)"
    close_to_one two.bf one.bf
    same_tensors two.bf again.bf
}

@test "mpi-11 ternary models through the quantizer (STE) with --ema; bf-muon with --kl and --qk-clip" {
    bf-quantize --keep-latent "$(F m.bf)" -o q.bf
    local args="--data $(F rev.bf) --steps 40 --batch 32 --lr 2e-3 --ema 0.9 -q"
    bf-ste-train $args --threads 2 -o one.bf q.bf
    job bf-ste-train $args --threads 1 -o two.bf q.bf
    close_to_one two.bf one.bf
    args="--data $(F rev.bf) --steps 30 --batch 32 --kl 0.1 --qk-clip 5 -q"
    bf-muon $args --threads 2 -o one.bf "$(F m.bf)"
    job bf-muon $args --threads 1 -o two.bf "$(F m.bf)"
    close_to_one two.bf one.bf
}

@test "mpi-12 bf-muon: Muon's matrices shared among the ranks, the same model" {
    local args="--data $(F rev.bf) --steps 40 --batch 32 --grokfast ema -q"
    bf-muon $args --threads 2 -o one.bf "$(F m.bf)"
    job bf-muon $args --threads 1 -o two.bf "$(F m.bf)"
    job bf-muon $args --threads 1 -o again.bf "$(F m.bf)"
    close_to_one two.bf one.bf
    same_tensors two.bf again.bf
}

@test "mpi-13 a recursive model (TRM): the rolling batch shared, the same model" {
    bf-data sudoku --size 4 --holes 6-8 --n-train 128 --n-val 32 --seed 3 -o s.bf
    bf-init --like s.bf --d 16 --heads 2 --layers 2 --ff 32 --recursion 2,2,3 -o r.bf
    local args="--data s.bf --steps 40 --batch 16 --lr 3e-3 -q"
    bf-ste-train $args --threads 2 -o one.bf r.bf
    job bf-ste-train $args --threads 1 -o two.bf r.bf
    local a b
    a=$(loss_of two.bf s.bf val) b=$(loss_of one.bf s.bf val)
    rel_close "$a" "$b" "$LOSS_TOL" || fail "val loss $a (2 ranks) against $b"
}

@test "mpi-14 bf-bake with a keep set, bf-halfbake and bf-svf train: the same models and expert" {
    bf-data seq --task copy --prompt "Copy it: " --min-len 3 --max-len 5 --n-train 64 --n-val 16 --seed 5 -o p.bf
    local args="--prompt x --data $(F rev.bf) --keep p.bf --steps 20 --batch 16 -q"
    bf-bake $args --threads 2 -o one.bf "$(F m.bf)"
    job bf-bake $args --threads 1 -o two.bf "$(F m.bf)"
    close_to_one two.bf one.bf
    args="--prompt x --data $(F rev.bf) --iterations 2 --steps 10 --batch 16 -q"
    bf-halfbake $args --threads 2 -o one.bf "$(F m.bf)"
    job bf-halfbake $args --threads 1 -o two.bf "$(F m.bf)"
    close_to_one two.bf one.bf
    args="--data p.bf --steps 20 --lr 1e-2 --name p -q"
    bf-svf train $args --threads 2 -o e1.bf "$(F m.bf)"
    job bf-svf train $args --threads 1 -o e2.bf "$(F m.bf)"
    bf-svf apply --expert e1.bf "$(F m.bf)" -o one.bf
    bf-svf apply --expert e2.bf "$(F m.bf)" -o two.bf
    close_to_one two.bf one.bf
}

@test "mpi-20 bf-eval --data prints one process's metrics, to the last digit" {
    # (all but the seconds it took), each process on one thread: a float
    # product split over two threads may round differently (OpenBLAS's
    # Haswell/Zen sgemm does, in the last digits of the loss)
    bf-eval --data "$(F rev.bf)" --split train --json --threads 1 "$(F m.bf)" | sed 's/"seconds":[0-9.e-]*,//' >one.json
    job bf-eval --data "$(F rev.bf)" --split train --json --threads 1 "$(F m.bf)" | sed 's/"seconds":[0-9.e-]*,//' >two.json
    grep -q '"loss":' one.json
    cmp one.json two.json
}

@test "mpi-22 bf-eval --data on a recursive model: the batches shared, the same metrics" {
    # (a recursive model's products give other last bits on another thread
    # count: one thread on both sides)
    bf-data sudoku --size 4 --holes 6-8 --n-train 8 --n-val 40 --seed 3 -o s.bf
    bf-init --like s.bf --d 16 --heads 2 --layers 2 --ff 32 --recursion 2,2,3 -o r.bf
    bf-eval --data s.bf --batch 8 --threads 1 --json r.bf | sed 's/"seconds":[0-9.e-]*,//' >one.json
    job bf-eval --data s.bf --batch 8 --threads 1 --json r.bf | sed 's/"seconds":[0-9.e-]*,//' >two.json
    grep -q '"mean_steps":' one.json
    cmp one.json two.json
}

@test "mpi-21 bf-svf mix: the candidates scored over the ranks, the same mixture" {
    bf-data seq --task copy --prompt "Copy it: " --min-len 3 --max-len 5 --n-train 64 --n-val 16 --seed 6 -o c.bf
    bf-svf train --data c.bf --steps 10 --lr 1e-2 --name c -q -o c-e.bf "$(F m.bf)"
    bf-svf train --data "$(F rev.bf)" --steps 10 --lr 1e-2 --name r -q -o r-e.bf "$(F m.bf)"
    bf-svf mix --experts c-e.bf,r-e.bf --data c.bf --iterations 2 --population 6 -q -o one.bf "$(F m.bf)"
    job bf-svf mix --experts c-e.bf,r-e.bf --data c.bf --iterations 2 --population 6 -q --threads 1 -o two.bf "$(F m.bf)"
    same_tensors one.bf two.bf
}

@test "mpi-30 pipes: a model on mpirun's stdin, a model on its stdout" {
    bf-init --like "$(F rev.bf)" --d 16 --layers 1 --heads 2 --seed 4 |
        job bf-ste-train --data "$(F rev.bf)" --steps 5 --batch 16 -q >piped.bf
    bf-init --like "$(F rev.bf)" --d 16 --layers 1 --heads 2 --seed 4 -o m4.bf
    job bf-ste-train --data "$(F rev.bf)" --steps 5 --batch 16 -q -o file.bf m4.bf
    same_tensors piped.bf file.bf
}

@test "mpi-31 rank 0 alone writes: one log line a step, one output, one summary" {
    job bf-ste-train --data "$(F rev.bf)" --steps 6 --batch 16 --log log.jsonl -o out.bf "$(F m.bf)" 2>err
    [[ $(wc -l <log.jsonl) -eq 6 ]] || fail "$(wc -l <log.jsonl) log lines for 6 steps"
    [[ $(jget '$j->{ranks}' < <(head -1 log.jsonl)) -eq 2 ]]
    [[ $(jget '$j->{reduce_bytes}' < <(tail -1 log.jsonl)) -gt 0 ]]
    bf-eval out.bf >/dev/null
    job bf-eval --data "$(F rev.bf)" "$(F m.bf)" >lines
    [[ $(grep -c '^split val' lines) -eq 1 ]] || fail "$(cat lines)"
    [[ ! -s err ]] || fail "stderr: $(cat err)"
}

@test "mpi-40 a data error ends the job with one line and no output" {
    printf 'not a stream' >bad.bf
    run3 job bf-ste-train --data bad.bf --steps 5 -o out.bf "$(F m.bf)"
    assert_data_error bf-ste-train
    [[ ! -e out.bf ]]
    run3 job bf-ste-train --data "$(F rev.bf)" --batch 1 --steps 5 -o out.bf "$(F m.bf)"
    assert_data_error bf-ste-train
    grep -q 'cannot be shared by 2 ranks' "$T/err"
    [[ ! -e out.bf ]]
}

@test "mpi-41 a rank that fails alone ends the job with its one line" {
    # two programs in one job (mpirun's A : B): rank 1's option is bad
    run3 timeout 120 mpirun -q --oversubscribe -np 1 bf-ste-train --data "$(F rev.bf)" --steps 5 -o out.bf "$(F m.bf)" : \
        -np 1 bf-ste-train --data "$(F rev.bf)" --steps 5 --threads 0 -o out.bf "$(F m.bf)"
    [[ $status -ne 0 && $status -ne 124 ]] || fail "exit status $status"
    assert_one_error bf-ste-train
    grep -q -- '--threads' "$T/err"
    [[ ! -e out.bf ]]
}

@test "mpi-50 a job stopped by SIGUSR1 to mpirun saves its state; resumed, the same tensors" {
    # SIGUSR1, because mpirun passes it on to the ranks at once; for SIGTERM
    # it gives them a second before SIGKILL (bitforge(7), Running under MPI).
    # The signal goes to mpirun alone: timeout's would reach the whole group.
    local args="--data $(F rev.bf) --steps 1500 --batch 32 --threads 1 -q"
    timeout 120 mpirun -q -np 2 --oversubscribe --bind-to none bf-ste-train $args --state st.bf --state-every 100000 \
        --log log.jsonl -o cut.bf "$(F m.bf)" 2>err &
    local pid=$! k launcher=
    # the signal once the run has taken some steps (its handler is in place)
    for k in $(seq 600); do [[ $(cat log.jsonl 2>/dev/null | wc -l) -ge 20 ]] && break; sleep 0.1; done
    launcher=$(pgrep -P $pid -x mpirun) || true
    [[ -n $launcher ]] && kill -USR1 $launcher 2>/dev/null || true
    wait $pid || true
    [[ -e cut.bf ]] && skip "the job ended before the signal"
    [[ -s st.bf ]] || fail "no state saved: $(cat err)"
    grep -q 'interrupted after step' err || fail "$(cat err)"
    job bf-ste-train $args --resume st.bf -o res.bf "$(F m.bf)"
    job bf-ste-train $args -o full.bf "$(F m.bf)"
    same_tensors full.bf res.bf
}

@test "mpi-51 a recursive model's job: its rows' states gathered into the state, resumed the same" {
    bf-data sudoku --size 4 --holes 6-8 --n-train 128 --n-val 16 --seed 3 -o s.bf
    bf-init --like s.bf --d 16 --heads 2 --layers 2 --ff 32 --recursion 2,2,3 -o r.bf
    local args="--data s.bf --steps 12 --batch 16 --threads 1 -q"
    job bf-ste-train $args -o full.bf r.bf
    job bf-ste-train --data s.bf --steps 12 --batch 16 --threads 1 -q --state st.bf --state-every 5 -o /dev/null r.bf
    [[ $(jget '$j->{meta}{step}' < <(bf-eval --json st.bf)) -eq 10 ]]
    job bf-ste-train $args --resume st.bf -o res.bf r.bf
    same_tensors full.bf res.bf
}
