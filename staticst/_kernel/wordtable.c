/*
 * The word -> token-ids table: open addressing over a power-of-two slot array.
 *
 * A generation has fixed capacities (slots, entries and the key / id arenas are allocated once), so a
 * reader never sees memory move. The one writer (holding the GIL) fills an entry and its arena bytes
 * first and only then publishes the slot with a release store; readers (any thread, GIL released) load
 * slots with acquire, so a published slot always points at complete data. When a generation is full, the
 * module replaces it by a larger one (or, at the bound, an empty one); a reader keeps the generation it
 * started with alive through its reference count.
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

uint64_t st_hash(const char *key, size_t len) {
    /* 64-bit FNV-1a over 8-byte words with a final avalanche: cheap for short keys, well mixed. */
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, key + i, len - i);
    h = (h ^ tail) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t p = 16;
    while (p < n && p < (1u << 31)) p <<= 1;
    return p;
}

st_gen *st_gen_new(uint32_t max_entries) {
    st_gen *g = calloc(1, sizeof(st_gen));
    if (!g) return NULL;
    if (max_entries < 8) max_entries = 8;
    g->nslots = pow2_at_least((uint64_t)max_entries * 2);
    g->max_entries = max_entries;
    g->keys_cap = (size_t)max_entries * 12 + 4096;
    g->ids_cap = (size_t)max_entries * 3 + 4096;
    g->slots = calloc(g->nslots, sizeof(uint64_t));
    g->entries = malloc((size_t)max_entries * sizeof(st_entry));
    g->keys = malloc(g->keys_cap);
    g->ids = malloc(g->ids_cap * sizeof(int32_t));
    if (!g->slots || !g->entries || !g->keys || !g->ids) {
        free((void *)g->slots);
        free(g->entries);
        free(g->keys);
        free(g->ids);
        free(g);
        return NULL;
    }
    atomic_init(&g->refs, 1);
    return g;
}

void st_gen_incref(st_gen *g) { atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed); }

void st_gen_decref(st_gen *g) {
    if (!g) return;
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) {
        free((void *)g->slots);
        free(g->entries);
        free(g->keys);
        free(g->ids);
        free(g);
    }
}

const st_entry *st_gen_find(const st_gen *g, const char *key, size_t len, uint64_t hash) {
    uint32_t mask = g->nslots - 1;
    uint32_t tag = (uint32_t)(hash >> 32);
    uint32_t i = (uint32_t)hash & mask;
    for (;;) {
        uint64_t v = atomic_load_explicit(&g->slots[i], memory_order_acquire);
        if (!v) return NULL;
        if ((uint32_t)(v >> 32) == tag) {
            const st_entry *e = &g->entries[(uint32_t)v - 1];
            if (e->key_len == len && memcmp(g->keys + e->key_off, key, len) == 0) return e;
        }
        i = (i + 1) & mask;
    }
}

int st_gen_insert(st_gen *g, const char *key, size_t len, uint64_t hash, const int32_t *ids, size_t n_ids) {
    if (len > ST_MAX_KEY || n_ids > ST_MAX_WORD_IDS) return 0;
    return st_gen_insert_any(g, key, len, hash, ids, n_ids);
}

int st_gen_reserve(st_gen *g, size_t key_bytes, size_t n_ids) {
    if (g->keys_len + key_bytes > g->keys_cap) {
        char *keys = realloc(g->keys, g->keys_len + key_bytes);
        if (!keys) return -1;
        g->keys = keys;
        g->keys_cap = g->keys_len + key_bytes;
    }
    if (g->ids_len + n_ids > g->ids_cap) {
        int32_t *more = realloc(g->ids, (g->ids_len + n_ids) * sizeof(int32_t));
        if (!more) return -1;
        g->ids = more;
        g->ids_cap = g->ids_len + n_ids;
    }
    return 0;
}

int st_gen_insert_any(st_gen *g, const char *key, size_t len, uint64_t hash, const int32_t *ids, size_t n_ids) {
    if (g->n_entries >= g->max_entries || g->keys_len + len > g->keys_cap || g->ids_len + n_ids > g->ids_cap ||
        g->keys_len + len > UINT32_MAX || g->ids_len + n_ids > UINT32_MAX)
        return 0;
    if (st_gen_find(g, key, len, hash)) return 1;
    st_entry *e = &g->entries[g->n_entries];
    e->key_off = (uint32_t)g->keys_len;
    e->key_len = (uint32_t)len;
    e->ids_off = (uint32_t)g->ids_len;
    e->n_ids = (uint32_t)n_ids;
    if (len) memcpy(g->keys + g->keys_len, key, len);
    if (n_ids) memcpy(g->ids + g->ids_len, ids, n_ids * sizeof(int32_t));
    g->keys_len += len;
    g->ids_len += n_ids;
    uint32_t index = g->n_entries++;
    uint32_t mask = g->nslots - 1;
    uint32_t i = (uint32_t)hash & mask;
    while (atomic_load_explicit(&g->slots[i], memory_order_relaxed)) i = (i + 1) & mask;
    uint64_t v = ((uint64_t)(uint32_t)(hash >> 32) << 32) | (uint64_t)(index + 1);
    atomic_store_explicit(&g->slots[i], v, memory_order_release);
    return 1;
}
