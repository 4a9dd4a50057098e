#!/usr/bin/env bats
# bf-import (bf-import(1)): help and usage, files without bitforge metadata
# (the configuration measured and completed by options), tensors that do not
# make the model, and the hostile table: every case of tests/tools/
# bf-mkbadst.c, and truncations of a valid file, as a file and through a
# pipe, each exit 1 with one line naming the problem, nothing left behind.
#
# Families: 0x help and usage, 1x configuration, 9x hostile.

load helpers

nh() { bf-tstat "$1" | awk '{ print $1, $2, $8 }'; }

# st_header FILE: the JSON header of a safetensors file
st_header() {
    local n
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    head -c $((8 + n)) "$1" | tail -c "$n"
}

# strip_meta IN OUT: IN with its __metadata__ entry blanked out (the same
# length, so every offset holds)
strip_meta() {
    perl -0777 -pe 's/("__metadata__":\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\},)/" " x length($1)/e' "$1" >"$2"
}

# ------------------------------------------------------------------ 0x help

@test "import-01 --help lists every option; --version" {
    run3 bf-import --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-import' "$T/out"
    local f
    for f in --format --names --heads --ctx --act --act-bits --output safetensors; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
    prints_version bf-import
}

@test "import-02 usage errors exit 2 with one line; a terminal" {
    local args
    for args in "" "--format gguf" "--format safetensors --names x" "--format safetensors --heads 0" \
        "--format safetensors --act-bits 4" "--format safetensors --act tanh" "--format safetensors a b"; do
        # shellcheck disable=SC2086
        run3 bf-import $args </dev/null
        assert_usage_error bf-import
    done
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 | bf-export --format safetensors -o m.st
    refuses_terminal bf-import --format safetensors m.st
}

# --------------------------------------------------------- 1x configuration

@test "import-10 no bitforge metadata: measured from the shapes, --heads and --ctx given" {
    local args names
    for args in "--norm layer --pos learned --act gelu" "--subln --tie --act swiglu" "--act relu2"; do
        # shellcheck disable=SC2086
        bf-init --vocab 11 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24 $args -o m.bf
        for names in bitforge hf; do
            bf-export --format safetensors --names $names m.bf -o m.st
            strip_meta m.st bare.st
            [[ $(st_header bare.st) != *__metadata__* ]] || fail "metadata left"
            run3 bf-import --format safetensors bare.st
            assert_data_error bf-import
            [[ $stderr == *--heads* ]] || fail "$stderr"
            local extra=()
            [[ $args == *relu2* ]] && extra=(--act relu2)
            bf-import --format safetensors --heads 2 --ctx 6 "${extra[@]}" bare.st -o back.bf
            [[ $(nh back.bf) == "$(nh m.bf)" ]] || fail "$args $names: tensors differ"
            [[ $(bf-eval --json back.bf | jget '$j->{meta}') == "$(bf-eval --json m.bf | jget '$j->{meta}')" ]] ||
                fail "$args $names: meta $(bf-eval --json back.bf | jget '$j->{meta}')"
        done
    done
}

@test "import-11 options override the metadata; a wrong head count is refused" {
    bf-init --vocab 9 --ctx 8 --d 16 --heads 2 --layers 1 | bf-export --format safetensors -o m.st
    bf-import --format safetensors --ctx 4 --act-bits 0 m.st -o m.bf
    [[ $(bf-eval --json m.bf | jget '$j->{meta}{ctx}') == 4 ]]
    [[ $(bf-eval --json m.bf | jget '$j->{meta}{act_bits}') == 0 ]]
    run3 bf-import --format safetensors --heads 3 m.st
    assert_data_error bf-import
}

@test "import-12 tensors that do not make the model" {
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 | bf-export --format safetensors -o m.st
    # a head the configuration does not have (tie_embed true, same length)
    perl -0777 -pe 's/\\"tie_embed\\":false/\\"tie_embed\\":true /' m.st >tied.st
    run3 bf-import --format safetensors tied.st
    assert_data_error bf-import
    [[ $stderr == *"'head' is not a tensor of this model"* ]] || fail "$stderr"
    # a tensor of the wrong shape: the configuration says d_ff 64
    perl -0777 -pe 's/\\"d_ff\\":64/\\"d_ff\\":32/' m.st >ff.st
    run3 bf-import --format safetensors ff.st
    assert_data_error bf-import
    # a non-finite value
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 --tie | bf-export --format safetensors -o t.st
    local n
    n=$(od -An -tu8 -N8 t.st | tr -d ' ')
    perl -0777 -pe 'substr($_, '"$((8 + n))"', 4) = "\x00\x00\xc0\x7f"' t.st >nan.st
    run3 bf-import --format safetensors nan.st
    assert_data_error bf-import
}

# --------------------------------------------------------------- 9x hostile

# hostile MODE: every bf-mkbadst case, as a file (-o out.bf) or through a
# pipe: exit 1, one line matching the case, no output
hostile() {
    local mode=$1 kase why st msg fails=()
    while IFS=$'\t' read -r kase why; do
        bf-mkbadst "$kase" >case.st
        rm -f out.bf stdout
        st=0
        if [[ $mode == pipe ]]; then timeout -k 1 10 bf-import --format safetensors <case.st >stdout 2>err || st=$?
        else timeout -k 1 10 bf-import --format safetensors -o out.bf case.st </dev/null >stdout 2>err || st=$?; fi
        msg=$(<err)
        local why_not=()
        [[ $st -eq 1 ]] || why_not+=("exit status $st")
        [[ -z $(one_line_reason err bf-import) ]] || why_not+=("stderr: $(one_line_reason err bf-import)")
        [[ $msg =~ $why ]] || why_not+=("message does not match /$why/")
        [[ ! -e out.bf && ! -s stdout ]] || why_not+=("output left behind")
        ((${#why_not[@]} == 0)) || fails+=("$kase ($mode): $(IFS=';'; echo "${why_not[*]}") -- $msg")
    done < <(bf-mkbadst why)
    if ((${#fails[@]})); then
        printf '# %s\n' "${fails[@]}" >&2
        fail "${#fails[@]} hostile file(s) mishandled"
    fi
    [[ -z $(ls -A | grep '^\.') ]] || fail "temporary files left: $(ls -A)"
}

@test "import-90 hostile files, each named by its problem" { quick hostile file; }
@test "import-91 hostile files through a pipe" { quick hostile pipe; }

@test "import-92 every truncation of a small valid file is one line, exit 1" {
    bf-init --vocab 5 --ctx 4 --d 8 --heads 2 --layers 1 --ff 8 --tie | bf-quantize |
        bf-export --format safetensors --ternary packed -o m.st
    bf-import --format safetensors m.st >/dev/null
    local size n st fails=()
    size=$(stat -c %s m.st)
    for ((n = 0; n < size; n += 7)); do
        head -c $n m.st >cut.st
        st=0
        bf-import --format safetensors cut.st >out.bf 2>err || st=$?
        [[ $st -eq 1 && -z $(one_line_reason err bf-import) ]] || fails+=("$n: status $st $(head -c 200 err)")
    done
    ((${#fails[@]} == 0)) || fail "${fails[*]}"
}
