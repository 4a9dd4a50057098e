/* bf/interop.h — models to and from other programs' formats (part: formats):
 * safetensors (PyTorch, Hugging Face) both ways, and GGUF (llama.cpp) out.
 * bf-export(1) and bf-import(1) describe the mappings.
 *
 * Every function works on whole files in memory: a writer returns the file's
 * bytes for the program to write atomically, a reader takes them.  Nothing
 * here prints; failures set bf_err and return -1. */
#ifndef BF_INTEROP_H
#define BF_INTEROP_H

#include <stddef.h>
#include <stdint.h>

#include "bf/stream.h"

/* Tensor names in a safetensors file. */
typedef enum {
    BF_NAMES_BITFORGE,   /* the stream's own: tok_emb, blk.0.wq, … */
    BF_NAMES_HF,         /* Hugging Face llama: model.embed_tokens.weight, … */
    BF_NAMES_AUTO        /* import only: whichever the file uses */
} bf_names;

/* The Hugging Face name of a bitforge model tensor into out[BF_MAX_NAME + 1]
 * (ternary parts W.scale and W.latent too), and back; -1 (bf_err) for a
 * name outside the model's convention. */
int bf_name_to_hf(const char *bf, char *out);
int bf_name_from_hf(const char *hf, char *out);

/* ---------------------------------------------------------- safetensors */

#define BF_ST_MAX_HEADER 100000000u   /* the format's limit on the JSON header */

typedef struct {
    bf_names names;       /* BITFORGE or HF */
    bf_dtype float_dtype; /* F32, F16 or BF16: the float tensors */
    int packed;           /* ternary W as U8 (its stream bytes) + F32 scale (+ latent);
                             0: W as scale·codes in float_dtype, scale and latent dropped */
} bf_st_opts;

/* A model stream (header h, tensors s) as a safetensors file in *buf
 * (malloc'd, *len bytes).  The __metadata__ map records the model's
 * configuration ("bitforge.config") and, when packed, how each ternary
 * tensor is packed ("bitforge.ternary"), so that bf_st_parse restores the
 * stream exactly. */
int bf_st_write(const bf_header *h, const bf_tset *s, const bf_st_opts *o, uint8_t **buf, size_t *len);

/* The Hugging Face configuration (config.json, a LlamaConfig) that goes
 * beside what bf_st_write writes with o, so that transformers'
 * LlamaForCausalLM loads the pair: sizes, RoPE's theta, RMSNorm's epsilon,
 * tied embeddings, the float dtype.  Needs hf names and float (not packed)
 * ternary weights; a model Llama cannot express (LayerNorm, an activation
 * other than SwiGLU, learned positions, sub-norms, full attention,
 * recursion) is an error naming what.  *buf malloc'd, *len bytes. */
int bf_st_hf_config(const bf_header *h, const bf_st_opts *o, uint8_t **buf, size_t *len);

/* What a file without bitforge metadata leaves open, for bf_st_parse. */
typedef struct {
    bf_names names;       /* AUTO, BITFORGE or HF */
    int n_head, ctx;      /* 0: from the metadata, or an error naming the option */
    int act;              /* -1: from the metadata, else swiglu with w3, gelu without */
    int act_bits;         /* -1: from the metadata, else 8 */
} bf_st_import_opts;

/* A safetensors file (buf, len; label names it in messages) into a model
 * stream's header and tensors.  Enforces the format: an 8-byte header size
 * of at most BF_ST_MAX_HEADER, a header of valid UTF-8 JSON (an object of
 * tensors and an optional string-to-string __metadata__), known dtypes,
 * sizes that equal dtype × shape without overflow, and data offsets that
 * cover the data section exactly, without holes or overlaps. */
int bf_st_parse(const uint8_t *buf, size_t len, const char *label, const bf_st_import_opts *o, bf_header *h,
                bf_tset *s);
/* Reading a file a piece at a time (a pipe), never more than it describes:
 * the header's size from the first 8 bytes, checked against the limit; then,
 * from the first 8 + that many bytes, the size of the data section the
 * header's offsets describe (the header checked as bf_st_parse checks it). */
int bf_st_header_len(const uint8_t *buf, const char *label, uint64_t *hn);
int bf_st_data_len(const uint8_t *buf, size_t len, const char *label, uint64_t *data_len);

/* ----------------------------------------------------------------- GGUF */

typedef enum { BF_GG_F32 = 0, BF_GG_F16 = 1, BF_GG_TQ1_0 = 34, BF_GG_TQ2_0 = 35 } bf_gg_type;

typedef struct {
    bf_gg_type matrix;    /* block matrices: TQ2_0, TQ1_0, F16 or F32 */
    bf_gg_type embed;     /* token embedding and head: F32 or F16 */
    int fallback;         /* a TQ matrix whose rows are not a multiple of 256 goes F16 */
} bf_gg_opts;

/* A model stream as a GGUF version 3 file for llama.cpp in *buf (malloc'd,
 * *len bytes): architecture "llama" (or "bitnet" for subln models), q and k
 * rows permuted for llama's rope, a vocabulary of vocab tokens with no
 * tokenizer model.  Ternary block matrices go TQ2_0 or TQ1_0 (their codes
 * as they are, each block's scale the row's), or dequantized to F16/F32. */
int bf_gguf_write(const bf_header *h, const bf_tset *s, const bf_gg_opts *o, uint8_t **buf, size_t *len);

#endif
