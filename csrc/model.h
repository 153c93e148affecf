/*
 * The tokenizer models (private to model.c, model_wordpiece.c, model_unigram.c, model_bpe.c).
 *
 * One pre-token in, its ids out, exactly as Hugging Face `tokenizers` (0.23) gives them from
 * `model.tokenize(word)`: the Rust sources of tokenizers/src/models/{wordpiece,unigram,bpe} are the
 * specification, and each file below says which of their rules (tie-breaking, fusing, fallbacks) it copies.
 *
 * Every model keeps its vocabulary in one double-array trie (st_da) built once at load: a key's bytes are
 * walked one transition at a time (two loads per byte, no hashing, no string copies), which gives exact
 * lookups, WordPiece's longest match and Unigram's common-prefix search from the same structure.
 * Encoding allocates nothing per word: the per-thread scratch grows to the longest word seen and stays.
 */
#ifndef STATICST_MODEL_H
#define STATICST_MODEL_H

#include "tokenizer.h"

/* ------------------------------------------------------------------ double-array trie */

/* One state: its children are at base + byte (their check names the parent), value is the id of the key
 * ending here (-1: none). Free cells have check -1; the root is state 0 (check -2). */
typedef struct {
    int32_t base, check, value;
} st_da_unit;

typedef struct {
    st_da_unit *u;
    uint32_t size;  /* cells; every base + 255 < size, so transitions need no bounds check */
    uint32_t nodes; /* states in use */
} st_da;

/* One key of a build: bytes, length, value. */
typedef struct {
    const char *p;
    uint32_t len;
    int32_t value;
    uint32_t order; /* position in the input: the last of equal keys wins */
    uint64_t head;  /* (set by st_da_build) the first 8 bytes, big-endian, zero-padded: most comparisons */
} st_da_key;

/* Build from keys[0:n] (sorted in place; of equal keys the one with the highest `order` wins).
 * Returns ST_OK or ST_NOMEM. */
int st_da_build(st_da *da, st_da_key *keys, size_t n);
void st_da_free(st_da *da);

static inline int32_t st_da_next(const st_da *da, int32_t s, unsigned char c) {
    int32_t t = da->u[s].base + c;
    return da->u[t].check == s ? t : -1;
}

/* The state after walking p[0:len] from s, or -1. */
static inline int32_t st_da_walk(const st_da *da, int32_t s, const char *p, size_t len) {
    for (size_t i = 0; i < len && s >= 0; i++) s = st_da_next(da, s, (unsigned char)p[i]);
    return s;
}

/* The value of the key p[0:len] (walked from the root), or -1. */
static inline int32_t st_da_get(const st_da *da, const char *p, size_t len) {
    int32_t s = st_da_walk(da, 0, p, len);
    return s >= 0 ? da->u[s].value : -1;
}

/* ------------------------------------------------------------------ models */

enum st_model_kind { ST_WORDPIECE = 1, ST_UNIGRAM = 2, ST_BPE = 3 };

typedef struct {
    uint64_t key; /* (left id << 32 | right id) + 1; 0: empty slot */
    uint32_t rank;
    int32_t new_id;
} st_merge;

struct st_model {
    int kind;
    st_da da;
    int32_t vocab_size;   /* ids are in [0, vocab_size) */
    int32_t unk_id;       /* -1: none (or WordPiece / BPE: the unk token is not in the vocabulary) */
    int has_unk_token;    /* WordPiece / BPE: an unk token is configured */
    int byte_fallback;
    int32_t byte_ids[256]; /* "<0xXX>" ids, -1 where missing */
    /* WordPiece */
    int32_t cont_state;   /* the trie state after continuing_subword_prefix, -1 if no key starts with it */
    size_t max_chars;     /* max_input_chars_per_word */
    /* Unigram */
    double *scores;       /* per id */
    double unk_score;     /* min score - 10 */
    /* BPE */
    char *prefix, *suffix; /* continuing_subword_prefix / end_of_word_suffix, NUL-terminated, or NULL */
    size_t prefix_len, suffix_len;
    int32_t prefix_state; /* trie state after the prefix, or -1 */
    int fuse_unk, ignore_merges;
    int32_t ascii_ids[4][128]; /* [not first | last << 1][byte]: the id of an ASCII character's symbol, -1 */
    st_merge *merges;
    uint32_t merge_mask;  /* slots - 1 (a power of two) */
    uint32_t n_merges;
    /* bookkeeping */
    size_t memory;        /* bytes held */
    const char *error;    /* what `tokenizers` raises where st_model_encode returns ST_HF */
};

struct st_model_scratch {
    void *buf;  /* the model's per-word working memory, grown to the longest word seen */
    size_t cap; /* bytes */
};

/* Make room for `bytes` bytes of working memory. ST_OK or ST_NOMEM. */
int st_scratch_room(st_model_scratch *s, size_t bytes);

int st_wordpiece_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *s);
int st_unigram_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *s);
int st_bpe_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *s);

static inline uint64_t st_merge_hash(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 29);
}

static inline const st_merge *st_merge_find(const st_model *m, int32_t a, int32_t b) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = (uint32_t)st_merge_hash(key) & m->merge_mask;
    for (;;) {
        const st_merge *e = &m->merges[i];
        if (e->key == key) return e;
        if (e->key == 0) return NULL;
        i = (i + 1) & m->merge_mask;
    }
}

#endif
