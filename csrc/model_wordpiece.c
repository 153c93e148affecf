/*
 * WordPiece, as tokenizers/src/models/wordpiece/mod.rs `tokenize`:
 *   - a word of more than max_input_chars_per_word characters is one unk token;
 *   - from the start, the longest vocabulary token that is a prefix of the rest (after the first piece, the
 *     token is continuing_subword_prefix + the piece), then the same from where it ended;
 *   - if some position has no such token, the whole word is one unk token;
 *   - the unk token missing from the vocabulary is an error there (ST_HF here: the caller's slow path raises it).
 * The Rust code shortens the candidate one character at a time and looks each up; walking the trie once
 * from the position and keeping the last key end seen gives the same longest token (a key is valid UTF-8,
 * so it ends on a character boundary of the word) in one pass.
 */
#include "model.h"

static int unk_word(const st_model *m, st_ibuf *out) {
    if (m->unk_id < 0) return ST_HF;
    if (st_ibuf_reserve(out, 1) != ST_OK) return ST_NOMEM;
    out->data[out->len++] = m->unk_id;
    return ST_OK;
}

int st_wordpiece_encode(const st_model *m, const char *w, size_t len, st_ibuf *out, st_model_scratch *scratch) {
    (void)scratch;
    if (len > m->max_chars) { /* characters <= bytes: count them only when the bytes exceed the limit */
        size_t chars = 0;
        for (size_t i = 0; i < len; i++) chars += ((unsigned char)w[i] & 0xC0) != 0x80;
        if (chars > m->max_chars) return unk_word(m, out);
    }
    if (st_ibuf_reserve(out, len) != ST_OK) return ST_NOMEM;
    const st_da_unit *u = m->da.u;
    const size_t n0 = out->len;
    size_t start = 0;
    while (start < len) {
        int32_t s = start ? m->cont_state : 0;
        int32_t best = -1;
        size_t end = start;
        if (s >= 0) {
            for (size_t i = start; i < len; i++) {
                int32_t t = u[s].base + (unsigned char)w[i];
                if (u[t].check != s) break;
                s = t;
                if (u[s].value >= 0) {
                    best = u[s].value;
                    end = i + 1;
                }
            }
        }
        if (best < 0) {
            out->len = n0;
            return unk_word(m, out);
        }
        out->data[out->len++] = best;
        start = end;
    }
    return ST_OK;
}
