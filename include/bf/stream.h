/* bf/stream.h — the tensor stream, version 1 (part: stream; bf-stream(5)).
 *
 *   header  tensor-header payload  …  trailer
 *
 * The reader validates every object before allocating for it, hands out one
 * tensor at a time, and verifies the trailer (count, XXH3-64 of all payload
 * bytes) at the end: a stream is good only once bf_reader_next returned 0.
 * The writer aligns every payload to 64 bytes from the stream's start and
 * never writes a trailer after an error, so a reader downstream of a failed
 * program sees a truncated stream. */
#ifndef BF_STREAM_H
#define BF_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "bf/tensor.h"
#include "bf/val.h"

#define BF_STREAM_VERSION 1
#define BF_MAX_HEADER_BYTES (1u << 20)   /* one header object, at most */
#define BF_MAX_NESTING 32
#define BF_MAX_CONTAINER 65536           /* entries in one header array or map */
#define BF_CHUNK_MAX ((size_t)1 << 31)   /* payload bin32 chunks, at most */

typedef struct {
    char kind[64];
    bf_val *meta;      /* a map, never NULL after a read or bf_header_init */
    bf_val *lineage;   /* an array, never NULL likewise */
} bf_header;

void bf_header_init(bf_header *h, const char *kind);
void bf_header_release(bf_header *h);
void bf_header_copy(bf_header *dst, const bf_header *src);

typedef struct bf_reader bf_reader;

/* path NULL or "-" reads stdin.  Reads and checks the stream header; NULL
 * and bf_err on failure.  Messages name the input ("model.bf: …"). */
bf_reader *bf_reader_open(const char *path);
bf_reader *bf_reader_fdopen(int fd, const char *label);
/* A stream held in memory: len bytes at buf, which must stay as they are
 * until bf_reader_close (tensors handed out own their payloads).  The same
 * parser and limits as a regular file's, whose size is known: a declared
 * payload larger than the bytes left is refused before any allocation. */
bf_reader *bf_reader_memopen(const void *buf, size_t len, const char *label);
const bf_header *bf_reader_header(const bf_reader *r);
/* 1: *t holds the next tensor (release it with bf_tensor_release);
 * 0: the trailer was read and verified, and nothing follows it;
 * -1: bf_err says what is wrong. */
int bf_reader_next(bf_reader *r, bf_tensor *t);
uint64_t bf_reader_offset(const bf_reader *r);   /* bytes consumed so far */
/* Like bf_tensor_release, but hands a large payload's memory back to the
 * reader for the next tensor: a program that looks at one tensor at a time
 * then reads into memory already mapped, without page faults or zeroing. */
void bf_reader_recycle(bf_reader *r, bf_tensor *t);
void bf_reader_close(bf_reader *r);

/* The whole stream into memory: header and every tensor.  On failure s is
 * empty and h untouched. */
int bf_read_all(const char *path, bf_header *h, bf_tset *s);
/* The same from a stream held in memory (bf_reader_memopen). */
int bf_read_all_mem(const void *buf, size_t len, const char *label, bf_header *h, bf_tset *s);

typedef struct bf_writer bf_writer;

/* path NULL or "-" writes stdout (refusing a terminal); otherwise a temporary
 * file beside path that bf_writer_close renames over it. */
bf_writer *bf_writer_open(const char *path);
bf_writer *bf_writer_fdopen(int fd);
void bf_writer_set_chunk(bf_writer *w, size_t max);  /* payload split size (tests) */
int bf_writer_header(bf_writer *w, const bf_header *h);
int bf_writer_tensor(bf_writer *w, const bf_tensor *t);
/* Trailer, flush, rename: 0 on success.  On any earlier error it writes no
 * trailer, removes the temporary file, and returns -1. */
int bf_writer_close(bf_writer *w);
void bf_writer_abort(bf_writer *w);   /* no trailer; temporary file removed */
/* Removes the temporary file of every writer still open, and nothing else
 * (async-signal-safe): for a program about to end without closing them, as
 * its out-of-memory hook (bf/log.h) does. */
void bf_writer_remove_temporaries(void);
/* Writes a whole stream: header and every tensor of s. */
int bf_write_all(const char *path, const bf_header *h, const bf_tset *s);

extern int bf_stream_epipe;   /* set when a write met EPIPE (the reader went away) */

#endif
