/* safetensors_internal.h — what the interop files share
 * (lib/methods/safetensors*.c, gguf.c; bf/interop.h is the public side). */
#ifndef BF_SAFETENSORS_INTERNAL_H
#define BF_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/json.h"
#include "bf/val.h"

/* The header is JSON: bf/json.h. */

#endif
