/*
 * The word -> token-ids table: open addressing over a power-of-two slot array of (tag, entry index).
 *
 * A generation has fixed capacities (slots and entries are allocated once, and the arenas for long keys
 * and long id runs never move while the generation is shared), so a reader never sees memory move. The
 * one writer (holding the GIL) fills an entry first and only then publishes its slot with a release store;
 * readers (any thread, GIL released) load slots with acquire, so a published slot always points at
 * complete data. An entry is one 64-byte cache line holding a short key and a short id run inline, so a
 * lookup of a common word touches two cache lines (slot, entry). When a generation is full the module
 * replaces it by a larger copy (or, at the bound, an empty one); readers keep their generation alive
 * through its reference count.
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define ST_HAVE_MMAP 1
#endif

/* A generation's arrays come straight from the OS (anonymous, zero-filled, page-aligned mappings): a page
 * counts in RSS only once written, and freeing a generation returns all of it. From the C heap, the big
 * blocks of successive generations fragment it (glibc raises its mmap threshold after the first free), so
 * a long run over an open vocabulary (numbers, ids) crept upwards by tens of MB. */
static void *big_alloc(size_t bytes) {
#ifdef ST_HAVE_MMAP
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    return calloc(1, bytes);
#endif
}

static void big_free(void *p, size_t bytes) {
    if (!p) return;
#ifdef ST_HAVE_MMAP
    munmap(p, bytes);
#else
    (void)bytes;
    free(p);
#endif
}

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

void st_key_make(st_key *k, const char *p, size_t len) {
    k->p = p;
    k->len = len;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    if (len <= ST_INLINE_KEY) {
        k->w[0] = k->w[1] = k->w[2] = 0;
        memcpy(k->w, p, len);
        h = (h ^ k->w[0]) * 0xff51afd7ed558ccdULL;
        h = (h ^ (h >> 29) ^ k->w[1]) * 0xc4ceb9fe1a85ec53ULL;
        h = (h ^ (h >> 31) ^ k->w[2]) * 0xff51afd7ed558ccdULL;
    } else {
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            h = (h ^ (h >> 29) ^ w) * 0xff51afd7ed558ccdULL;
        }
        uint64_t tail = 0;
        memcpy(&tail, p + i, len - i);
        h = (h ^ (h >> 31) ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    }
    k->hash = mix(h);
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t p = 16;
    while (p < n && p < (1u << 31)) p <<= 1;
    return p;
}

static void gen_free(st_gen *g) {
    big_free((void *)g->slots, (size_t)g->nslots * sizeof(uint64_t));
    big_free(g->entries, (size_t)g->max_entries * sizeof(st_entry));
    big_free(g->keys, g->keys_cap);
    big_free(g->ids, g->ids_cap * sizeof(int32_t));
    free(g);
}

st_gen *st_gen_new(uint32_t max_entries) {
    st_gen *g = calloc(1, sizeof(st_gen));
    if (!g) return NULL;
    if (max_entries < 8) max_entries = 8;
    g->nslots = pow2_at_least((uint64_t)max_entries * 2);
    g->max_entries = max_entries;
    g->keys_cap = (size_t)max_entries * 4 + 4096;
    g->ids_cap = (size_t)max_entries + 4096;
    g->slots = big_alloc((size_t)g->nslots * sizeof(uint64_t)); /* zero-filled: every slot empty */
    g->entries = big_alloc((size_t)max_entries * sizeof(st_entry)); /* page-aligned: cache-line entries */
    g->keys = big_alloc(g->keys_cap);
    g->ids = big_alloc(g->ids_cap * sizeof(int32_t));
    if (!g->slots || !g->entries || !g->keys || !g->ids) {
        gen_free(g);
        return NULL;
    }
    atomic_init(&g->refs, 1);
    return g;
}

void st_gen_incref(st_gen *g) { atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed); }

void st_gen_decref(st_gen *g) {
    if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) gen_free(g);
}

static inline int same_key(const st_gen *g, const st_entry *e, const st_key *k) {
    if (e->key_len != k->len) return 0;
    if (k->len <= ST_INLINE_KEY) return e->key[0] == k->w[0] && e->key[1] == k->w[1] && e->key[2] == k->w[2];
    return memcmp(g->keys + e->key_off, k->p, k->len) == 0;
}

const st_entry *st_gen_find(const st_gen *g, const st_key *k) {
    uint32_t mask = g->nslots - 1;
    uint32_t tag = (uint32_t)(k->hash >> 32);
    uint32_t i = (uint32_t)k->hash & mask;
    for (;;) {
        uint64_t v = atomic_load_explicit(&g->slots[i], memory_order_acquire);
        if (!v) return NULL;
        if ((uint32_t)(v >> 32) == tag) {
            const st_entry *e = &g->entries[(uint32_t)v - 1];
            if (same_key(g, e, k)) return e;
        }
        i = (i + 1) & mask;
    }
}

int st_gen_insert(st_gen *g, const st_key *k, const int32_t *ids, size_t n_ids) {
    if (k->len > ST_MAX_KEY || n_ids > ST_MAX_WORD_IDS) return 0;
    return st_gen_insert_any(g, k, ids, n_ids);
}

/* Move a block to a larger mapping (only on a generation no reader sees yet). */
static void *big_grow(void *p, size_t used, size_t old_bytes, size_t new_bytes) {
    void *q = big_alloc(new_bytes);
    if (!q) return NULL;
    if (used) memcpy(q, p, used);
    big_free(p, old_bytes);
    return q;
}

int st_gen_reserve(st_gen *g, size_t key_bytes, size_t n_ids) {
    if (g->keys_len + key_bytes > g->keys_cap) { /* geometric growth: amortised O(1) per reserved byte */
        size_t cap = g->keys_cap * 2 > g->keys_len + key_bytes ? g->keys_cap * 2 : g->keys_len + key_bytes;
        char *keys = big_grow(g->keys, g->keys_len, g->keys_cap, cap);
        if (!keys) return -1;
        g->keys = keys;
        g->keys_cap = cap;
    }
    if (g->ids_len + n_ids > g->ids_cap) {
        size_t cap = g->ids_cap * 2 > g->ids_len + n_ids ? g->ids_cap * 2 : g->ids_len + n_ids;
        int32_t *more = big_grow(g->ids, g->ids_len * sizeof(int32_t), g->ids_cap * sizeof(int32_t), cap * sizeof(int32_t));
        if (!more) return -1;
        g->ids = more;
        g->ids_cap = cap;
    }
    return 0;
}

int st_gen_insert_any(st_gen *g, const st_key *k, const int32_t *ids, size_t n_ids) {
    size_t len = k->len;
    size_t key_bytes = len > ST_INLINE_KEY ? len : 0;
    size_t id_words = n_ids > ST_INLINE_IDS ? n_ids : 0;
    if (g->n_entries >= g->max_entries || g->keys_len + key_bytes > g->keys_cap || g->ids_len + id_words > g->ids_cap ||
        g->keys_len + key_bytes > UINT32_MAX || g->ids_len + id_words > UINT32_MAX || len > UINT32_MAX ||
        n_ids > UINT32_MAX)
        return 0;
    if (st_gen_find(g, k)) return 1;
    st_entry *e = &g->entries[g->n_entries];
    memset(e, 0, sizeof(*e));
    e->key_len = (uint32_t)len;
    e->n_ids = (uint32_t)n_ids;
    if (key_bytes) {
        e->key_off = (uint32_t)g->keys_len;
        memcpy(g->keys + g->keys_len, k->p, len);
        g->keys_len += len;
    } else {
        memcpy(e->key, k->w, sizeof(e->key));
    }
    if (id_words) {
        e->ids_off = (uint32_t)g->ids_len;
        memcpy(g->ids + g->ids_len, ids, n_ids * sizeof(int32_t));
        g->ids_len += n_ids;
    } else if (n_ids) {
        memcpy(e->ids, ids, n_ids * sizeof(int32_t));
    }
    uint32_t index = g->n_entries++;
    uint32_t mask = g->nslots - 1;
    uint32_t i = (uint32_t)k->hash & mask;
    while (atomic_load_explicit(&g->slots[i], memory_order_relaxed)) i = (i + 1) & mask;
    uint64_t v = ((uint64_t)(uint32_t)(k->hash >> 32) << 32) | (uint64_t)(index + 1);
    atomic_store_explicit(&g->slots[i], v, memory_order_release);
    return 1;
}
