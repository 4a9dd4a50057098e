/* bf/lora.h — LoRA adapters, a weight source (part: adapt; bf-bake(1)).
 *
 * An adapter holds, for each adapted block matrix W [out, in] of a model, two
 * small matrices A [r, in] and B [out, r]; attached, the matrix the model
 * computes with is
 *     W_eff = W_base + (α/r)·B·A
 * where W_base is the weight the model had when the adapter was attached (a
 * float parameter, or a ternary matrix's scale·codes: the base stays frozen).
 * The backward maps dL/dW_eff onto the adapter:
 *     dB += (α/r)·dW_eff·Aᵀ,   dA += (α/r)·Bᵀ·dW_eff
 * B starts at zero (the adapted model starts as the base), A uniform in
 * ±1/sqrt(in), seeded.  The adapter's A and B form a bf_pset of their own, so
 * any optimizer trains them while the base's parameters stay as they are.
 *
 * Merging at strength s writes W_base + s·(α/r)·B·A into the model: into a
 * float parameter as it is; for a ternary matrix into its latent L (for a
 * stream without one, the pre-image of its codes, bf_quant_preimage), which is
 * then quantized again with the tensor's own rule, Q(L + s·(α/r)·B·A).
 *
 * On a ternary matrix the adapter trains through the quantizer (through_quant,
 * the default): W_eff = Q(L + s·(α/r)·B·A) with the tensor's own rule (its
 * scale recomputed as the rule does), s the strength it will be merged at,
 * and the gradient passed straight through, dW_eff standing for
 * d(L + s·(α/r)·B·A).  What is trained is then what a merge at s writes: the
 * same codes, the same outputs.  With through_quant 0 (the seed's rule) the
 * adapter sits on scale·codes in float, W_eff = scale·codes + s·(α/r)·B·A,
 * and a merge's re-quantization decides what remains of it.
 *
 * Stream (bf-stream(5)): kind "adapter"; meta {rank, alpha, targets: [names of
 * the adapted matrices], base: hex XXH3-64 digest of the base model's tensors
 * (bf_tset_digest), merge: "quant" or "latent" (through_quant; absent: latent,
 * as adapters were before)}; tensors "W.lora_a" [r, in] and "W.lora_b" [out, r], F32,
 * for each adapted W, in the model's order.  Applying an adapter to another
 * base is an error. */
#ifndef BF_LORA_H
#define BF_LORA_H

#include <stdint.h>

#include "bf/model.h"
#include "bf/stream.h"

/* The block matrices an adapter may target, as a bit mask. */
enum {
    BF_LORA_WQ = 1, BF_LORA_WK = 2, BF_LORA_WV = 4, BF_LORA_WO = 8,
    BF_LORA_W1 = 16, BF_LORA_W3 = 32, BF_LORA_W2 = 64,
    BF_LORA_ATTN = 15, BF_LORA_MLP = 112
};
/* The matrices the bits name, bit k = bf_lora_target_names[k]. */
extern const char *const bf_lora_target_names[];   /* "wq" … "w2", NULL-ended */
/* The matrices of m a mask names ("blk.L.wq" …), in the model's order, into
 * names (NULL: only count; w3 of a GELU model is absent); returns how many.
 * LoRA adapters and SVF experts both adapt such a list. */
size_t bf_lora_target_list(const bf_model *m, unsigned targets, char (*names)[64]);
/* "wq,wk,wv,wo", "attn", "mlp", "all" or any comma list of those: 0 or -1. */
int bf_lora_targets_parse(const char *list, unsigned *mask);
/* The mask of the block matrices a stream's meta "targets" names (an
 * adapter's, an experts stream's); errors say `what` the stream is. */
int bf_lora_targets_from_meta(const bf_val *meta, const char *what, unsigned *mask);

typedef struct bf_lora_src bf_lora_src;

typedef struct {
    int rank;
    double alpha;
    unsigned targets;
    uint64_t base_digest;     /* of the base model's tensors */
    bf_pset ps;               /* every A and B, and their gradients */
    bf_lora_src **src;        /* attached sources, one per adapted matrix (NULL: detached) */
    size_t nmat;
    char (*mat)[64];          /* the adapted matrices' names, in the model's order */
    /* how attached sources compute (set before bf_adapter_attach) */
    int through_quant;        /* ternary targets through the quantizer (1, the default) or in float (0) */
    double strength;          /* the s of W_eff, the strength it is to be merged at (default 1) */
} bf_adapter;

/* A new adapter for model m (rank 1 … min(out, in) of every target, alpha > 0). */
int bf_adapter_create(bf_adapter *a, const bf_model *m, int rank, double alpha, unsigned targets, uint64_t seed,
                      uint64_t base_digest);
/* From an adapter stream, checked against the model it is for: its digest,
 * matrix names and shapes, finite values.  -1 and one message otherwise. */
int bf_adapter_from_tset(bf_adapter *a, const bf_header *h, const bf_tset *s, const bf_model *m, uint64_t base_digest);
/* The adapter as a stream's header meta and tensors. */
int bf_adapter_to_tset(const bf_adapter *a, bf_header *h, bf_tset *out);
void bf_adapter_free(bf_adapter *a);

/* Puts the adapter's sources on the model's matrices (their current effective
 * weights become the frozen bases); the model then computes with W_eff and its
 * backward fills the adapter's gradients (zeroed by bf_model_zero_grad). */
int bf_adapter_attach(bf_adapter *a, bf_model *m);
/* Makes the attached matrices' W_eff anew from A and B (after an optimizer
 * step); the model's other matrices are left as they are. */
int bf_adapter_refresh(bf_adapter *a, bf_model *m);
/* Takes them off again: the model computes with its bases. */
void bf_adapter_detach(bf_adapter *a, bf_model *m);
/* Detaches, then writes base + s·(α/r)·B·A into the model (ternary matrices
 * re-quantized with their own rule). */
int bf_adapter_merge(bf_adapter *a, bf_model *m, double strength);

#endif
