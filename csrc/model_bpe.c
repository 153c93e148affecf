/*
 * BPE, as tokenizers/src/models/bpe/model.rs (`tokenize`, `merge_word`) and word.rs (`merge_all`):
 *   - ignore_merges: a word that is itself in the vocabulary is that one token;
 *   - each character becomes a symbol: the id of (continuing_subword_prefix unless first) + character +
 *     (end_of_word_suffix if last); when that string is not in the vocabulary, with byte_fallback the
 *     "<0xXX>" ids of all its bytes (prefix and suffix bytes included) if every one exists — without
 *     flushing a pending unknown; else, with an unk token, an unknown symbol (consecutive ones fused into
 *     one with fuse_unk; flushed before the next known character and at the end); else nothing;
 *   - merges: a min-heap of (rank, position) over adjacent pairs in the merge map; the top is applied when
 *     its left symbol is alive, has a right neighbour and the current pair still maps to the entry's new id
 *     (the only staleness check tokenizers makes), then the pairs with the new neighbours are pushed.
 * Equal (rank, position) entries are the same pair, so the heap's order among them cannot change the result.
 */
#include "model.h"

typedef struct {
    int32_t c, prev, next;
    uint32_t len; /* bytes; 0: merged into its left neighbour */
} bpe_sym;

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} bpe_merge;

static inline int merge_less(const bpe_merge *a, const bpe_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static inline void heap_push(bpe_merge *h, size_t *n, bpe_merge x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline bpe_merge heap_pop(bpe_merge *h, size_t *n) {
    bpe_merge top = h[0], x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = l + 1 < m && merge_less(&h[l + 1], &h[l]) ? l + 1 : l;
        if (!merge_less(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
    return top;
}

static inline size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static inline void add_sym(bpe_sym *sy, size_t *n, int32_t c, uint32_t len) {
    size_t i = (*n)++;
    sy[i].c = c;
    sy[i].prev = (int32_t)i - 1;
    sy[i].next = -1;
    sy[i].len = len;
    if (i) sy[i - 1].next = (int32_t)i;
}

/* Byte-fallback ids of the bytes of (prefix) + ch + (suffix) into ids; 0 when one is missing. */
static int fallback_ids(const st_model *m, const unsigned char *ch, size_t clen, int with_prefix, int with_suffix,
                        int32_t *ids, size_t *n) {
    size_t k = 0;
    if (with_prefix)
        for (size_t i = 0; i < m->prefix_len; i++)
            if ((ids[k++] = m->byte_ids[(unsigned char)m->prefix[i]]) < 0) return 0;
    for (size_t i = 0; i < clen; i++)
        if ((ids[k++] = m->byte_ids[ch[i]]) < 0) return 0;
    if (with_suffix)
        for (size_t i = 0; i < m->suffix_len; i++)
            if ((ids[k++] = m->byte_ids[(unsigned char)m->suffix[i]]) < 0) return 0;
    *n = k;
    return 1;
}

int st_bpe_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *scratch) {
    if (len > (size_t)INT32_MAX / 4) return ST_NOMEM;
    if (m->ignore_merges) {
        int32_t id = st_da_get(&m->da, w, len);
        if (id >= 0) {
            if (st_ibuf_reserve(out, 1) != ST_OK) return ST_NOMEM;
            out->data[out->len++] = id;
            return ST_OK;
        }
    }
    /* symbols: at most one per byte of each character's string (byte fallback), prefix and suffix included */
    const size_t max_sym = len * (1 + m->prefix_len) + m->suffix_len + 1;
    const size_t max_heap = 3 * max_sym + 1;
    const size_t fb_max = m->prefix_len + 4 + m->suffix_len;
    if (st_scratch_room(scratch, max_sym * sizeof(bpe_sym) + max_heap * sizeof(bpe_merge) + fb_max * sizeof(int32_t)) != ST_OK)
        return ST_NOMEM;
    bpe_sym *sy = scratch->buf;
    bpe_merge *heap = (bpe_merge *)(sy + max_sym);
    int32_t *fb = (int32_t *)(heap + max_heap);
    const unsigned char *s = (const unsigned char *)w;
    const st_da_unit *u = m->da.u;
    size_t n = 0;
    int32_t unk = -1; /* a pending unknown symbol: its byte length (unk_id is its id) */
    uint32_t unk_len = 0;
    for (size_t pos = 0; pos < len;) {
        const size_t clen = utf8_len(s[pos]);
        const int first = pos == 0, last = pos + clen >= len;
        int32_t id;
        if (s[pos] < 0x80) {
            id = m->ascii_ids[(!first) | (last << 1)][s[pos]];
        } else {
            int32_t st = first ? 0 : m->prefix_state;
            for (size_t i = 0; i < clen && st >= 0; i++) {
                int32_t t = u[st].base + s[pos + i];
                st = u[t].check == st ? t : -1;
            }
            if (last && m->suffix && st >= 0) st = st_da_walk(&m->da, st, m->suffix, m->suffix_len);
            id = st >= 0 ? u[st].value : -1;
        }
        if (id >= 0) {
            if (unk >= 0) {
                add_sym(sy, &n, m->unk_id, unk_len);
                unk = -1;
            }
            add_sym(sy, &n, id, (uint32_t)clen);
        } else {
            size_t nfb;
            if (m->byte_fallback && fallback_ids(m, s + pos, clen, !first && m->prefix, last && m->suffix, fb, &nfb)) {
                for (size_t i = 0; i < nfb; i++) add_sym(sy, &n, fb[i], 1); /* a pending unknown stays pending */
            } else if (m->has_unk_token) {
                if (unk >= 0 && m->fuse_unk) {
                    unk_len += (uint32_t)clen;
                } else {
                    if (m->unk_id < 0) return ST_HF;
                    if (unk >= 0) add_sym(sy, &n, m->unk_id, unk_len);
                    unk = m->unk_id;
                    unk_len = (uint32_t)clen;
                }
            }
        }
        pos += clen;
    }
    if (unk >= 0) add_sym(sy, &n, m->unk_id, unk_len);

    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const st_merge *mg = st_merge_find(m, sy[i].c, sy[i + 1].c);
        if (mg) heap_push(heap, &nh, (bpe_merge){mg->rank, (uint32_t)i, mg->new_id});
    }
    while (nh) {
        bpe_merge top = heap_pop(heap, &nh);
        bpe_sym *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        const int32_t next_pos = cur->next;
        const bpe_sym right = sy[next_pos];
        const st_merge *mg = st_merge_find(m, cur->c, right.c);
        if (!mg || mg->new_id != top.new_id) continue; /* a stale entry */
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        sy[next_pos].len = 0;
        if (right.next > -1 && (size_t)right.next < n) sy[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            mg = st_merge_find(m, sy[cur->prev].c, cur->c);
            if (mg) heap_push(heap, &nh, (bpe_merge){mg->rank, (uint32_t)cur->prev, mg->new_id});
        }
        if (cur->next >= 0 && (size_t)cur->next < n) {
            mg = st_merge_find(m, cur->c, sy[cur->next].c);
            if (mg) heap_push(heap, &nh, (bpe_merge){mg->rank, top.pos, mg->new_id});
        }
    }
    if (st_ibuf_reserve(out, n) != ST_OK) return ST_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (sy[i].len) out->data[out->len++] = sy[i].c;
    return ST_OK;
}
