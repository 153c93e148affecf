/*
 * Unigram, as tokenizers/src/models/unigram/model.rs (`encode_optimized`, then `tokenize`):
 *   - Viterbi over byte positions: from each character start (in order), every vocabulary piece that is a
 *     prefix of the rest (shortest first, the common-prefix search of the trie) offers best[start] + score
 *     to best[end]; an end takes the offer when it has none yet or the offer is strictly greater (so of
 *     equal scores the path found first stays: the earliest start, then the shorter piece);
 *   - a character with no single-character piece also offers best[start] + (min score - 10) with unk_id
 *     (an error there when unk_id is None and the offer would be taken: ST_HF here);
 *   - the best path is read back from the end; runs of consecutive pieces whose id is unk_id are fused into
 *     one string (fuse_unk is always on for Unigram);
 *   - each resulting string is looked up again: a piece keeps its id; a fused run takes the id of the piece
 *     equal to it if there is one, else with byte_fallback the "<0xXX>" ids of its bytes when all exist,
 *     else unk_id.
 * Scores are the float64 values `tokenizers` holds (parsed from its own serialization, which round-trips),
 * added in the same order: the same sums, the same comparisons, the same path.
 */
#include "model.h"

typedef struct {
    double score; /* the best path score ending here */
    int32_t start; /* where its last piece starts, -1: no path yet */
    int32_t id;
} uni_node;

static inline size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

int st_unigram_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *scratch) {
    if (len > (size_t)INT32_MAX - 1) return ST_NOMEM;
    if (st_scratch_room(scratch, (len + 1) * sizeof(uni_node) + len * sizeof(int32_t)) != ST_OK) return ST_NOMEM;
    uni_node *best = scratch->buf;
    int32_t *path = (int32_t *)(best + len + 1); /* ends of the best path's pieces, last first */
    for (size_t i = 0; i <= len; i++) {
        best[i].score = 0.0;
        best[i].start = -1;
        best[i].id = 0;
    }
    const st_da_unit *u = m->da.u;
    const double *scores = m->scores;
    const unsigned char *s = (const unsigned char *)w;
    for (size_t pos = 0; pos < len;) {
        const double here = best[pos].score;
        const size_t mblen = utf8_len(s[pos]);
        int single = 0;
        int32_t st = 0;
        for (size_t i = pos; i < len; i++) {
            int32_t t = u[st].base + s[i];
            if (u[t].check != st) break;
            st = t;
            int32_t id = u[t].value;
            if (id >= 0) {
                uni_node *target = &best[i + 1];
                double cand = scores[id] + here;
                if (target->start < 0 || cand > target->score) {
                    target->score = cand;
                    target->start = (int32_t)pos;
                    target->id = id;
                }
                single |= i + 1 - pos == mblen;
            }
        }
        if (!single) {
            uni_node *target = &best[pos + mblen];
            double cand = m->unk_score + here;
            if (target->start < 0 || cand > target->score) {
                if (m->unk_id < 0) return ST_HF;
                target->score = cand;
                target->start = (int32_t)pos;
                target->id = m->unk_id;
            }
        }
        pos += mblen;
    }
    size_t n_path = 0;
    for (size_t end = len; end > 0; end = (size_t)best[end].start) path[n_path++] = (int32_t)end;
    if (st_ibuf_reserve(out, n_path) != ST_OK) return ST_NOMEM;
    size_t k = n_path;
    while (k > 0) {
        size_t end = (size_t)path[--k];
        int32_t id = best[end].id;
        if (id != m->unk_id) {
            out->data[out->len++] = id;
            continue;
        }
        /* a run of unknown pieces: fused into one string, looked up again */
        size_t start = (size_t)best[end].start;
        while (k > 0 && best[path[k - 1]].id == m->unk_id) end = (size_t)path[--k];
        int32_t found = st_da_get(&m->da, w + start, end - start);
        if (found >= 0) {
            out->data[out->len++] = found;
            continue;
        }
        if (m->byte_fallback) {
            size_t b = start;
            while (b < end && m->byte_ids[s[b]] >= 0) b++;
            if (b == end) {
                if (st_ibuf_reserve(out, (end - start) + k) != ST_OK) return ST_NOMEM;
                for (b = start; b < end; b++) out->data[out->len++] = m->byte_ids[s[b]];
                continue;
            }
        }
        out->data[out->len++] = m->unk_id;
    }
    return ST_OK;
}
