#!/usr/bin/env bats
# bf-export (bf-export(1)): help and usage, safetensors round trips through
# bf-import (byte for byte, every name convention, dtype and ternary form),
# the GGUF file's frame (magic, version, alignment, names, key/values) and
# its refusals, -o atomicity and the terminal.  llama.cpp and the Python
# readers check the files themselves in `make check-interop`
# (tests/interop/).
#
# Families: 0x help and usage, 1x safetensors, 2x gguf, 3x output.

load helpers

# tstat_names_hashes FILE: "NAME DTYPE HASH" per tensor
nh() { bf-tstat "$1" | awk '{ print $1, $2, $8 }'; }

model() {   # a float model and its ternary version, rows of 256
    bf-data modarith --op add --p 7 -o d.bf
    bf-init --like d.bf --d 256 --layers 1 --heads 4 --ff 512 --seed 5 -o f32.bf
    bf-quantize f32.bf -o tq2.bf
    bf-quantize --pack tq1 --per-row f32.bf -o tq1.bf
}

# ------------------------------------------------------------------ 0x help

@test "export-01 --help lists every option; --version" {
    run3 bf-export --help
    [[ $status -eq 0 && ! -s $T/err ]]
    grep -q '^usage: bf-export' "$T/out"
    local f
    for f in --format --names --dtype --ternary --type --float --fallback --config --output gguf safetensors tq2_0 tq1_0 bf16 packed; do
        grep -q -- "$f" "$T/out" || fail "--help does not mention $f"
    done
    prints_version bf-export
}

@test "export-02 usage errors exit 2 with one line" {
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 -o m.bf
    local args
    for args in "" "--format onnx" "--format gguf --names hf" "--format gguf --dtype f16" "--format gguf --ternary packed" \
        "--format safetensors --type f16" "--format safetensors --fallback" "--format safetensors --float f16" \
        "--format safetensors --dtype f64" "--format gguf --type q4_0" "--format gguf m.bf m.bf"; do
        # shellcheck disable=SC2086
        run3 bf-export $args m.bf
        assert_usage_error bf-export
    done
}

@test "export-03 refuses a terminal" {
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 -o m.bf
    refuses_terminal bf-export --format gguf m.bf
}

# ----------------------------------------------------------- 1x safetensors

@test "export-10 safetensors: the header, and F32 back byte for byte" {
    model
    bf-export --format safetensors f32.bf -o m.st
    local n
    n=$(od -An -tu8 -N8 m.st | tr -d ' ')
    ((n % 8 == 0)) || fail "header size $n is not a multiple of 8"
    head -c $((8 + n)) m.st | tail -c "$n" | grep -q '"tok_emb":{"dtype":"F32","shape":\[9,256\],"data_offsets":\[0,9216\]}'
    head -c $((8 + n)) m.st | grep -q '"bitforge.config"'
    bf-import --format safetensors m.st -o back.bf
    [[ $(nh back.bf) == "$(nh f32.bf)" ]] || fail "tensors differ"
    bf-export --format safetensors back.bf | cmp - m.st
}

@test "export-11 packed ternary comes back exactly, TQ2 per tensor and TQ1 per row" {
    model
    local m
    for m in tq2 tq1; do
        bf-export --format safetensors --ternary packed $m.bf -o $m.st
        bf-import --format safetensors $m.st -o $m.back.bf
        [[ $(nh $m.back.bf) == "$(nh $m.bf)" ]] || fail "$m: tensors differ: $(diff <(nh $m.bf) <(nh $m.back.bf))"
        bf-export --format safetensors --ternary packed $m.back.bf | cmp - $m.st
    done
    [[ $(loss_of tq1.back.bf d.bf) == "$(loss_of tq1.bf d.bf)" ]]
}

@test "export-12 ternary dequantized: bf-dequant's tensors" {
    model
    bf-export --format safetensors tq2.bf | bf-import --format safetensors -o a.bf
    bf-dequant tq2.bf -o b.bf
    [[ $(nh a.bf) == "$(nh b.bf)" ]] || fail "$(diff <(nh a.bf) <(nh b.bf))"
}

@test "export-13 Hugging Face names, both ways" {
    model
    bf-export --format safetensors --names hf --ternary packed tq2.bf -o hf.st
    local n
    n=$(od -An -tu8 -N8 hf.st | tr -d ' ')
    local h
    h=$(head -c $((8 + n)) hf.st | tail -c "$n")
    local name
    for name in model.embed_tokens.weight model.layers.0.input_layernorm.weight model.layers.0.self_attn.q_proj.weight \
        model.layers.0.self_attn.q_proj.weight_scale model.layers.0.self_attn.o_proj.weight \
        model.layers.0.post_attention_layernorm.weight model.layers.0.mlp.gate_proj.weight model.layers.0.mlp.up_proj.weight \
        model.layers.0.mlp.down_proj.weight model.norm.weight lm_head.weight; do
        [[ $h == *"\"$name\""* ]] || fail "no $name"
    done
    [[ $h != *'"blk.'* ]] || fail "a bitforge name in an hf file"
    bf-import --format safetensors hf.st -o back.bf
    [[ $(nh back.bf) == "$(nh tq2.bf)" ]]
    bf-import --format safetensors --names bitforge hf.st >x.bf 2>err && fail "read hf names as bitforge's" || true
}

@test "export-14 F16 and BF16 files: halves of the values, the same loss within 1e-3" {
    model
    local dt
    for dt in f16 bf16; do
        bf-export --format safetensors --dtype $dt f32.bf | bf-import --format safetensors -o $dt.bf
        bf-tstat $dt.bf | awk -v d="${dt^^}" '$1 == "tok_emb" && $2 != d { exit 1 }' || fail "$dt: tok_emb not ${dt^^}"
        rel_close "$(loss_of $dt.bf d.bf)" "$(loss_of f32.bf d.bf)" 1e-3 || fail "$dt: loss $(loss_of $dt.bf d.bf)"
        bf-export --format safetensors --dtype $dt $dt.bf | bf-import --format safetensors -o $dt.2.bf
        [[ $(nh $dt.2.bf) == "$(nh $dt.bf)" ]]
    done
}

@test "export-15 every model variant round-trips, hf names too" {
    bf-init --vocab 11 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24 --norm layer --pos learned --subln --act gelu -o a.bf
    bf-init --vocab 11 --ctx 6 --d 16 --heads 2 --layers 2 --ff 24 --act relu2 --tie -o b.bf
    local m names
    for m in a b; do
        for names in bitforge hf; do
            bf-export --format safetensors --names $names $m.bf | bf-import --format safetensors -o back.bf
            [[ $(nh back.bf) == "$(nh $m.bf)" ]] || fail "$m $names"
            [[ $(bf-eval --json back.bf | jget '$j->{meta}') == "$(bf-eval --json $m.bf | jget '$j->{meta}')" ]]
        done
    done
}

# ----------------------------------------------------------------- 2x gguf

@test "export-16 --config: the Hugging Face LlamaConfig beside the hf-named file; what Llama cannot express is one line, no file" {
    model
    bf-export --format safetensors --names hf --config c.json -o m.safetensors f32.bf
    [[ -s m.safetensors ]]
    [[ $(jget '$j->{model_type}' c.json) == llama && $(jget '$j->{architectures}[0]' c.json) == LlamaForCausalLM ]]
    [[ $(jget 'join ",", map { $j->{$_} } qw(vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads num_key_value_heads head_dim max_position_embeddings)' c.json) == 9,256,512,1,4,4,64,4 ]] ||
        fail "$(<c.json)"
    [[ $(jget '$j->{rms_norm_eps} == 1e-5 && $j->{rope_theta} == 10000 ? "ok" : "no"' c.json) == ok ]]
    [[ $(jget '$j->{tie_word_embeddings} ? "tied" : "untied"' c.json) == untied && $(jget '$j->{torch_dtype}' c.json) == float32 ]]
    bf-export --format safetensors --names hf --dtype bf16 --config c16.json -o /dev/null tq2.bf
    [[ $(jget '$j->{torch_dtype}' c16.json) == bfloat16 ]]
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 --tie -o tied.bf
    bf-export --format safetensors --names hf --config t.json -o /dev/null tied.bf
    [[ $(jget '$j->{tie_word_embeddings} ? "tied" : "untied"' t.json) == tied ]]
    local flags why
    while IFS='|' read -r flags why; do
        # shellcheck disable=SC2086
        bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 $flags -o odd.bf
        run3 bf-export --format safetensors --names hf --config odd.json -o odd.safetensors odd.bf
        assert_data_error bf-export
        [[ $stderr == "bf-export: Hugging Face's LlamaConfig cannot express $why" ]] || fail "$flags: $stderr"
        [[ ! -e odd.json && ! -e odd.safetensors ]] || fail "$flags: a file was written"
    done <<'EOF2'
--norm layer|LayerNorm (norm 'layer')
--act gelu|an MLP other than SwiGLU
--pos learned|learned positions
--subln|BitNet's sub-norms
--attn full|full attention
--recursion 1,1,2 --attn full|recursion
EOF2
    for flags in "--config x.json" "--names bitforge --config x.json" "--names hf --ternary packed --config x.json"; do
        # shellcheck disable=SC2086
        run3 bf-export --format safetensors $flags f32.bf
        assert_usage_error bf-export
    done
    run3 bf-export --format gguf --config x.json f32.bf
    assert_usage_error bf-export
}

@test "export-20 gguf: magic, version 3, llama, names, aligned data" {
    model
    bf-export --format gguf tq2.bf -o m.gguf
    [[ $(head -c 8 m.gguf | od -An -tx1 | tr -d ' ') == 4747554603000000 ]]
    local s
    for s in general.architecture llama general.alignment llama.context_length llama.embedding_length llama.block_count \
        llama.feed_forward_length llama.attention.head_count llama.rope.freq_base llama.attention.layer_norm_rms_epsilon \
        llama.vocab_size tokenizer.ggml.model token_embd.weight blk.0.attn_q.weight blk.0.ffn_gate.weight output_norm.weight \
        output.weight; do
        grep -aq "$s" m.gguf || fail "no $s"
    done
    (($(stat -c %s m.gguf) % 32 == 0))
    bf-export --format gguf --type tq1_0 tq2.bf -o m1.gguf
    bf-export --format gguf --type f32 tq2.bf -o m32.gguf
    bf-export --format gguf f32.bf -o f.gguf
    lt "$(stat -c %s m1.gguf)" "$(stat -c %s m.gguf)"
    lt "$(stat -c %s m.gguf)" "$(stat -c %s m32.gguf)"
    [[ $(stat -c %s f.gguf) == "$(stat -c %s m32.gguf)" ]]
}

@test "export-21 gguf: rows not a multiple of 256 name the tensor, --fallback writes F16" {
    bf-init --vocab 9 --ctx 4 --d 64 --heads 2 --layers 1 | bf-quantize -o t.bf
    run3 bf-export --format gguf t.bf
    assert_data_error bf-export
    [[ $stderr == *"'blk.0.wq' has rows of 64 weights, not a multiple of 256"*"--fallback"* ]]
    bf-export --format gguf --fallback t.bf -o t.gguf
    grep -aq blk.0.attn_q.weight t.gguf
}

@test "export-22 gguf: float matrices are not TQ; models llama.cpp does not compute" {
    bf-init --vocab 9 --ctx 4 --d 256 --heads 2 --layers 1 -o f.bf
    run3 bf-export --format gguf --type tq2_0 f.bf
    assert_data_error bf-export
    [[ $stderr == *"'blk.0.wq' is F32, not ternary"* ]]
    local args
    for args in "--act gelu" "--act relu2" "--norm layer" "--pos learned" "--subln"; do
        # shellcheck disable=SC2086
        bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 $args -o v.bf
        run3 bf-export --format gguf --type f32 v.bf
        assert_data_error bf-export
    done
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 --subln --tie | bf-export --format gguf --type f32 -o b.gguf
    grep -aq bitnet b.gguf
    grep -aq blk.0.attn_sub_norm.weight b.gguf
}

@test "export-23 a stream that is not a model, a truncated stream" {
    bf-data modarith --op add --p 7 -o d.bf
    run3 bf-export --format safetensors d.bf
    assert_data_error bf-export
    bf-init --vocab 9 --ctx 4 --d 16 --heads 2 --layers 1 -o m.bf
    head -c 3000 m.bf >short.bf
    run3 bf-export --format gguf --type f32 short.bf
    assert_data_error bf-export
}

# ---------------------------------------------------------------- 3x output

@test "export-30 -o is atomic: a failure leaves the old file and no temporary" {
    bf-init --vocab 9 --ctx 4 --d 64 --heads 2 --layers 1 | bf-quantize -o t.bf
    echo old >out.gguf
    run3 bf-export --format gguf -o out.gguf t.bf
    assert_data_error bf-export
    [[ $(cat out.gguf) == old ]]
    [[ -z $(ls -A | grep '^\.') ]] || fail "temporary files left: $(ls -A)"
    bf-export --format gguf --fallback -o out.gguf t.bf
    grep -aq GGUF out.gguf
    [[ -z $(ls -A | grep '^\.') ]]
}
