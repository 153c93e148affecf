/*
 * Tokenizing one text.
 *
 * The native pipeline (st_pipe_text, at the end; pipeline.h): added tokens in the raw text, the normaliser
 * (a 128-entry table read off the tokenizer for ASCII pieces, else st_normalize), added tokens in each
 * normalised piece, the pre-tokenizers, then every pre-token from the word table, this thread's new words or
 * the model itself. A word's key is the pre-token the model gets (or, for a final ByteLevel, its text before
 * the byte mapping), so a hit is exactly the model's output.
 *
 * The word-cache plan (st_tokenize_text; pipelines the kernel has no native model or normaliser for): ASCII
 * text with a verified plan (staticst.tokenization.plan), the careful route of the Python fast path, byte for
 * byte, missing words resolved by the Hugging Face model through Python:
 *
 *   1. not ASCII, refused by the family (Llama: a leading or a double space), or holding a raw substring
 *      (an added token, a pair the normaliser does not map character by character) -> Hugging Face;
 *   2. normalise with the plan's 128-entry table (deletions, lowercasing, any per-character mapping);
 *   3. holding a normalised substring -> Hugging Face; prepend a space if the family does;
 *   4. cut into keys by the family's rules and look each key up (shared table, then the call's overlay).
 *
 * Token rules (truncation, then unknown-token removal) are applied to the ids of the whole text.
 */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

int st_spans_push(st_spans *s, uint32_t off, uint32_t len) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        st_span *data = realloc(s->data, cap * sizeof(st_span));
        if (!data) return -1;
        s->data = data;
        s->cap = cap;
    }
    s->data[s->len].off = off;
    s->data[s->len].len = len;
    s->len++;
    return 0;
}

void st_scratch_free(st_scratch *s) {
    st_cbuf_free(&s->norm);
    st_cbuf_free(&s->misskeys);
    free(s->misses.data);
    memset(s, 0, sizeof(*s));
}

/* Rust char::is_whitespace on ASCII */
static inline int is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
/* Rust char::is_ascii_punctuation */
static inline int is_punct(unsigned char c) {
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}
static inline int is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int contains(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0) return 1;
    if (m > n) return 0;
    return memmem(hay, n, needle, m) != NULL;
}

/* Look one key up and append its ids; returns 0 found, 1 missing, -1 out of memory. */
static inline int lookup(const st_gen *gen, const st_gen *overlay, const char *key, size_t len, st_ibuf *out) {
    st_key k;
    st_key_make(&k, key, len);
    const st_entry *e = st_gen_find(gen, &k);
    const st_gen *owner = gen;
    if (!e && overlay) {
        e = st_gen_find(overlay, &k);
        owner = overlay;
    }
    if (!e) return 1;
    uint32_t n = e->n_ids;
    if (n) {
        if (out->len + n > out->cap && st_ibuf_reserve(out, n)) return -1;
        const int32_t *ids = st_entry_ids(owner, e);
        int32_t *dst = out->data + out->len;
        for (uint32_t i = 0; i < n; i++) dst[i] = ids[i];
        out->len += n;
    }
    return 0;
}

Py_ssize_t st_cut_bytes(const st_plan *plan, const char *text, Py_ssize_t len, int ascii) {
    if (plan->char_limit < 0) return len;
    if (ascii) return len > plan->char_limit ? plan->char_limit : len;
    Py_ssize_t chars = 0, i = 0;
    for (; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80 && chars++ == plan->char_limit) break;
    return i;
}

Py_ssize_t st_apply_rules(const st_plan *plan, int32_t *ids, Py_ssize_t n) {
    if (plan->max_length >= 0 && n > plan->max_length) {
        if (plan->truncate_left) memmove(ids, ids + (n - plan->max_length), (size_t)plan->max_length * sizeof(int32_t));
        n = plan->max_length;
    }
    if (plan->drop_unknown && plan->unk_id >= 0) {
        Py_ssize_t k = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (ids[i] != plan->unk_id) ids[k++] = ids[i];
        n = k;
    }
    return n;
}

/* the keys of the normalised text s[0:n], per family; each key is looked up as it is found */
#define KEY(start, end)                                                                   \
    do {                                                                                  \
        int r_ = lookup(gen, overlay, s + (start), (size_t)((end) - (start)), out);        \
        if (r_ < 0) return ST_NOMEM;                                                      \
        if (r_ > 0) {                                                                     \
            missed = 1;                                                                   \
            if (collect) {                                                                \
                size_t klen_ = (size_t)((end) - (start));                                 \
                if (st_cbuf_reserve(&scratch->misskeys, klen_)) return ST_NOMEM;          \
                if (klen_) memcpy(scratch->misskeys.data + scratch->misskeys.len, s + (start), klen_); \
                if (st_spans_push(&scratch->misses, (uint32_t)scratch->misskeys.len, (uint32_t)klen_)) \
                    return ST_NOMEM;                                                      \
                scratch->misskeys.len += klen_;                                           \
            } else {                                                                      \
                return ST_MISS;                                                           \
            }                                                                             \
        }                                                                                 \
    } while (0)

static int split_keys(const st_plan *plan, const st_gen *gen, const st_gen *overlay, const char *s, size_t n,
                      st_ibuf *out, st_scratch *scratch, int collect, int *missed_out) {
    int missed = 0;
    size_t i = 0;
    switch (plan->mode) {
    case ST_MODE_WHITESPACE:
        while (i < n) {
            while (i < n && is_ws((unsigned char)s[i])) i++;
            if (i >= n) break;
            size_t start = i;
            while (i < n && !is_ws((unsigned char)s[i])) i++;
            KEY(start, i);
        }
        break;
    case ST_MODE_BERT:
        while (i < n) {
            unsigned char c = (unsigned char)s[i];
            if (is_ws(c)) {
                i++;
                continue;
            }
            size_t start = i;
            if (is_punct(c)) {
                i++;
            } else {
                while (i < n && !is_ws((unsigned char)s[i]) && !is_punct((unsigned char)s[i])) i++;
            }
            KEY(start, i);
        }
        break;
    case ST_MODE_WORDS:
        while (i < n) {
            unsigned char c = (unsigned char)s[i];
            if (is_ws(c)) {
                i++;
                continue;
            }
            size_t start = i;
            if (is_word(c)) {
                while (i < n && is_word((unsigned char)s[i])) i++;
            } else {
                while (i < n && !is_word((unsigned char)s[i]) && !is_ws((unsigned char)s[i])) i++;
            }
            KEY(start, i);
        }
        break;
    case ST_MODE_METASPACE: /* the regex "[ ]?[^ ]+|[ ]" */
        while (i < n) {
            size_t start = i;
            if (s[i] == ' ') {
                i++;
                if (i < n && s[i] != ' ')
                    while (i < n && s[i] != ' ') i++;
            } else {
                while (i < n && s[i] != ' ') i++;
            }
            KEY(start, i);
        }
        break;
    case ST_MODE_LLAMA: /* str.split(" "): every piece, empty ones included */
        if (n == 0) break;
        for (;;) {
            size_t start = i;
            while (i < n && s[i] != ' ') i++;
            KEY(start, i);
            if (i >= n) break;
            i++; /* the space */
            if (i == n) {
                KEY(n, n); /* a trailing space: the last piece is empty */
                break;
            }
        }
        break;
    default:
        return ST_HF;
    }
    *missed_out = missed;
    return ST_OK;
}

/* One key looked up (the KEY macro as a function, for the chunked path). */
static int key_lookup(const st_gen *gen, const st_gen *overlay, const char *key, size_t len, st_ibuf *out,
                      st_scratch *scratch, int collect, int *missed) {
    int r = lookup(gen, overlay, key, len, out);
    if (r < 0) return ST_NOMEM;
    if (r > 0) {
        *missed = 1;
        if (!collect) return ST_MISS;
        if (st_cbuf_reserve(&scratch->misskeys, len)) return ST_NOMEM;
        if (len) memcpy(scratch->misskeys.data + scratch->misskeys.len, key, len);
        if (st_spans_push(&scratch->misses, (uint32_t)scratch->misskeys.len, (uint32_t)len)) return ST_NOMEM;
        scratch->misskeys.len += len;
    }
    return ST_OK;
}

/* An ASCII chunk of a text: normalised with the table, then cut into keys by the family's rules. */
static int ascii_chunk(const st_plan *plan, const st_gen *gen, const st_gen *overlay, const char *text, size_t len,
                       st_ibuf *out, st_scratch *scratch, int collect, int *missed) {
    st_cbuf *norm = &scratch->norm;
    norm->len = 0;
    if (st_cbuf_reserve(norm, len * ST_MAX_NORM + 1)) return ST_NOMEM;
    char *w = norm->data;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        uint8_t k = plan->norm_len[c];
        if (k == 1) {
            *w++ = plan->norm_out[c][0];
        } else if (k) {
            memcpy(w, plan->norm_out[c], k);
            w += k;
        }
    }
    int chunk_missed = 0;
    int status = split_keys(plan, gen, overlay, norm->data, (size_t)(w - norm->data), out, scratch, collect, &chunk_missed);
    *missed |= chunk_missed;
    return status;
}

/* A chunk holding non-ASCII text: one key, U+0080 + its UTF-8 bytes, resolved whole by the tokenizer. Keys
 * of ASCII text are ASCII, so they never start with U+0080 (bytes C2 80): the two kinds cannot collide. */
static int unicode_chunk(const st_gen *gen, const st_gen *overlay, const char *text, size_t len, st_ibuf *out,
                         st_scratch *scratch, int collect, int *missed) {
    st_cbuf *norm = &scratch->norm;
    norm->len = 0;
    if (st_cbuf_reserve(norm, len + 2)) return ST_NOMEM;
    norm->data[0] = (char)0xC2;
    norm->data[1] = (char)0x80;
    memcpy(norm->data + 2, text, len);
    return key_lookup(gen, overlay, norm->data, len + 2, out, scratch, collect, missed);
}

/* Non-ASCII text (UTF-8): its chunks are independent (the plan proved the normaliser and pre-tokenizer act
 * within them), so ASCII chunks take the table path and every other chunk is one cached key. */
static int tokenize_utf8(const st_plan *plan, const st_gen *gen, const st_gen *overlay, const char *text, size_t len,
                         st_ibuf *out, st_scratch *scratch, int collect, int *missed) {
    size_t i = 0;
    int status = ST_OK;
    if (plan->mode == ST_MODE_LLAMA) { /* str.split(" "): every piece, an empty last one included */
        for (;;) {
            size_t start = i;
            int ascii = 1;
            while (i < len && text[i] != ' ') ascii &= (unsigned char)text[i++] < 0x80;
            status = ascii ? key_lookup(gen, overlay, text + start, i - start, out, scratch, collect, missed)
                           : unicode_chunk(gen, overlay, text + start, i - start, out, scratch, collect, missed);
            if (status != ST_OK || i >= len) return status;
            i++; /* the space */
            if (i == len) return key_lookup(gen, overlay, text + len, 0, out, scratch, collect, missed);
        }
    }
    while (i < len) {
        while (i < len && (unsigned char)text[i] < 0x80 && plan->boundary[(unsigned char)text[i]]) i++;
        if (i >= len) break;
        size_t start = i;
        int ascii = 1;
        while (i < len && !((unsigned char)text[i] < 0x80 && plan->boundary[(unsigned char)text[i]]))
            ascii &= (unsigned char)text[i++] < 0x80;
        status = ascii ? ascii_chunk(plan, gen, overlay, text + start, i - start, out, scratch, collect, missed)
                       : unicode_chunk(gen, overlay, text + start, i - start, out, scratch, collect, missed);
        if (status != ST_OK && status != ST_MISS) return status;
        if (status == ST_MISS) return ST_MISS;
    }
    return ST_OK;
}

static int has_raw_substring(const st_plan *plan, const char *text, size_t len) {
    if (!plan->n_raw) return 0;
    int flagged = 0;
    for (size_t i = 0; i < len && !flagged; i++) flagged = plan->special[(unsigned char)text[i]];
    if (flagged)
        for (int k = 0; k < plan->n_raw; k++)
            if (contains(text, len, plan->raw[k], plan->raw_len[k])) return 1;
    return 0;
}

int st_tokenize_text(const st_plan *plan, const st_gen *gen, const st_gen *overlay, const char *text,
                     Py_ssize_t len, int is_ascii, st_ibuf *out, st_scratch *scratch, int collect) {
    if (plan->mode == ST_MODE_NONE || text == NULL) return ST_HF;
    if (!is_ascii) {
        if (!plan->unicode_chunks) return ST_HF;
        if (plan->char_limit >= 0) { /* the cut counts characters: find the byte after char_limit of them */
            Py_ssize_t chars = 0, i = 0;
            for (; i < len; i++)
                if (((unsigned char)text[i] & 0xC0) != 0x80 && chars++ == plan->char_limit) break;
            len = i;
        }
        if (plan->mode == ST_MODE_LLAMA && ((len > 0 && text[0] == ' ') || contains(text, (size_t)len, "  ", 2)))
            return ST_HF;
        if (has_raw_substring(plan, text, (size_t)len)) return ST_HF;
        size_t start = out->len;
        int missed = 0;
        int status = tokenize_utf8(plan, gen, overlay, text, (size_t)len, out, scratch, collect, &missed);
        if (status != ST_OK || missed) {
            out->len = start;
            return status != ST_OK ? status : ST_MISS;
        }
        Py_ssize_t kept = st_apply_rules(plan, out->data + start, (Py_ssize_t)(out->len - start));
        out->len = start + (size_t)kept;
        return ST_OK;
    }
    if (plan->char_limit >= 0 && len > plan->char_limit) len = plan->char_limit; /* ASCII: chars == bytes */
    if (plan->mode == ST_MODE_LLAMA) {
        if (len > 0 && text[0] == ' ') return ST_HF;
        if (contains(text, (size_t)len, "  ", 2)) return ST_HF;
    }
    if (has_raw_substring(plan, text, (size_t)len)) return ST_HF;
    st_cbuf *norm = &scratch->norm;
    norm->len = 0;
    if (st_cbuf_reserve(norm, (size_t)len * ST_MAX_NORM + 1)) return ST_NOMEM;
    char *w = norm->data;
    if (plan->prepend_space) *w++ = ' '; /* kept below only before non-empty text not starting with a space */
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        uint8_t k = plan->norm_len[c];
        if (k == 1) {
            *w++ = plan->norm_out[c][0];
        } else if (k) {
            memcpy(w, plan->norm_out[c], k);
            w += k;
        }
    }
    char *base = norm->data + (plan->prepend_space ? 1 : 0); /* the normalised text */
    size_t nb = (size_t)(w - base);
    for (int k = 0; k < plan->n_norm; k++)
        if (contains(base, nb, plan->norm[k], plan->norm_len_sub[k])) return ST_HF;
    char *s = base;
    size_t n = nb;
    if (plan->prepend_space && nb > 0 && base[0] != ' ') { /* a space before non-empty text not starting with one */
        s = norm->data;
        n = nb + 1;
    }
    size_t start = out->len;
    int missed = 0;
    int status = split_keys(plan, gen, overlay, s, n, out, scratch, collect, &missed);
    if (status != ST_OK) {
        out->len = start;
        return status;
    }
    if (missed) {
        out->len = start;
        return ST_MISS;
    }
    Py_ssize_t kept = st_apply_rules(plan, out->data + start, (Py_ssize_t)(out->len - start));
    out->len = start + (size_t)kept;
    return ST_OK;
}

/* ================================================================== the native pipeline (pipeline.h) */

void st_pipe_scratch_free(st_pipe_scratch *s) {
    st_cbuf_free(&s->norm);
    st_cbuf_free(&s->keymap);
    st_segments_free(&s->raw_segs);
    st_segments_free(&s->norm_segs);
    st_pretok_work_free(&s->pw);
    if (s->model) st_model_scratch_free(s->model);
    st_ibuf_free(&s->word_ids);
    st_gen_decref(s->fresh);
    memset(s, 0, sizeof(*s));
}

/* Words a thread's overlay holds at most: beyond it, a part tokenizes a new word again on every sight. */
#define ST_FRESH_MAX 32768

int st_overlay_put(st_gen **g, const st_key *k, const int32_t *ids, size_t n) {
    st_gen *cur = *g;
    if (!cur) {
        cur = *g = st_gen_new(256);
        if (!cur) return -1;
    }
    if (cur->n_entries >= cur->max_entries) {
        if (cur->max_entries >= ST_FRESH_MAX) return 0;
        st_gen *big = st_gen_new(cur->max_entries * 2);
        if (!big) return -1;
        for (uint32_t i = 0; i < cur->n_entries; i++) {
            const st_entry *e = &cur->entries[i];
            st_key ek;
            st_key_make(&ek, st_entry_key(cur, e), e->key_len);
            if (st_gen_reserve(big, e->key_len, e->n_ids) || st_gen_insert_any(big, &ek, st_entry_ids(cur, e), e->n_ids) != 1) {
                st_gen_decref(big);
                return -1;
            }
        }
        st_gen_decref(cur);
        cur = *g = big;
    }
    if (st_gen_reserve(cur, k->len, n)) return -1;
    return st_gen_insert_any(cur, k, ids, n) == 1 ? 0 : -1;
}

static inline int append_ids(st_ibuf *out, const int32_t *ids, size_t n) {
    if (out->len + n > out->cap && st_ibuf_reserve(out, n)) return ST_NOMEM;
    int32_t *dst = out->data + out->len;
    for (size_t i = 0; i < n; i++) dst[i] = ids[i];
    out->len += n;
    return ST_OK;
}

/* One pre-token: the shared table, this thread's new words, else the model. */
static int pipe_word(const st_pipe *pp, const st_gen *gen, const char *key, size_t klen, st_ibuf *out,
                     st_pipe_scratch *s) {
    st_key k;
    st_key_make(&k, key, klen);
    const st_entry *e = gen ? st_gen_find(gen, &k) : NULL;
    const st_gen *owner = gen;
    if (!e && s->fresh) {
        e = st_gen_find(s->fresh, &k);
        owner = s->fresh;
    }
    if (e) return append_ids(out, st_entry_ids(owner, e), e->n_ids);
    if (!s->model) {
        s->model = st_model_scratch_new(pp->model);
        if (!s->model) return ST_NOMEM;
    }
    const char *word = key;
    size_t wlen = klen;
    if (pp->key_bytelevel) { /* the key is the text before ByteLevel's mapping; the model gets it mapped */
        s->keymap.len = 0;
        if (st_bytelevel_map(key, klen, &s->keymap)) return ST_NOMEM;
        word = s->keymap.data;
        wlen = s->keymap.len;
    }
    s->word_ids.len = 0;
    int rc = st_model_encode(pp->model, word, wlen, &s->word_ids, s->model);
    if (rc != ST_OK) return rc;
    for (size_t i = 0; i < s->word_ids.len; i++)
        if (s->word_ids.data[i] < 0 || s->word_ids.data[i] >= s->id_limit) {
            s->bad_id = s->word_ids.data[i];
            return ST_BADID;
        }
    if (klen <= ST_MAX_KEY && s->word_ids.len <= ST_MAX_WORD_IDS &&
        st_overlay_put(&s->fresh, &k, s->word_ids.data, s->word_ids.len))
        return ST_NOMEM;
    return append_ids(out, s->word_ids.data, s->word_ids.len);
}

/* A normalised piece of text: pre-tokenize it and look up / tokenize every pre-token. */
static int pipe_words(const st_pipe *pp, const st_gen *gen, const char *text, size_t len, int origin, st_ibuf *out,
                      st_pipe_scratch *s) {
    if (!pp->has_pretok) return len ? pipe_word(pp, gen, text, len, out, s) : ST_OK;
    const char *buf;
    const st_pieces *pieces;
    s->pw.intr = s->intr;
    int rc = st_pretokenize(&pp->pretok, text, len, origin, &s->pw, &buf, &pieces);
    if (rc != ST_OK) return rc;
    for (size_t k = 0; k < pieces->len; k++) {
        rc = pipe_word(pp, gen, buf + pieces->data[k].off, pieces->data[k].len, out, s);
        if (rc != ST_OK) return rc;
        if (s->intr && ++s->since_poll >= 4096) {
            s->since_poll = 0;
            if (st_interrupt_poll(s->intr)) return ST_STOP;
        }
    }
    return ST_OK;
}

static inline int may_hold(const uint8_t *first, const char *text, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (first[(unsigned char)text[i]]) return 1;
    return 0;
}

static int is_ascii_bytes(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80) return 0;
    return 1;
}

/* The normaliser's output of p[0:n] into s->norm; *out / *out_len point at it (or at p itself). */
static int pipe_normalize(const st_pipe *pp, const char *p, size_t n, int ascii, st_pipe_scratch *s, const char **out,
                          size_t *out_len) {
    st_cbuf *nb = &s->norm;
    nb->len = 0;
    if (pp->ascii_table && (ascii || is_ascii_bytes(p, n))) {
        int odd = 0;
        if (pp->n_odd)
            for (size_t i = 0; i + 1 < n && !odd; i++)
                if (pp->ascii_odd[(unsigned char)p[i]])
                    for (int k = 0; k < pp->n_odd; k++)
                        if (pp->odd[k][0] == p[i] && pp->odd[k][1] == p[i + 1]) odd = 1;
        if (!odd) {
            if (st_cbuf_reserve(nb, n * 8 + 8)) return ST_NOMEM;
            char *w = nb->data;
            for (size_t i = 0; i < n; i++) {
                /* a huge text answers Ctrl-C here too (every 1 MB) */
                if ((i & 0xFFFFF) == 0xFFFFF && s->intr && st_interrupt_poll(s->intr)) return ST_STOP;
                unsigned char c = (unsigned char)p[i];
                uint8_t k = pp->norm_len[c];
                if (k == 1) {
                    *w++ = pp->norm_out[c][0];
                } else if (k) {
                    memcpy(w, pp->norm_out[c], k);
                    w += k;
                }
            }
            size_t m = (size_t)(w - nb->data);
            if (m && pp->ascii_prefix_len) { /* Prepend: before non-empty text */
                memmove(nb->data + pp->ascii_prefix_len, nb->data, m);
                memcpy(nb->data, pp->ascii_prefix, (size_t)pp->ascii_prefix_len);
                m += (size_t)pp->ascii_prefix_len;
            }
            nb->len = m;
            *out = nb->data;
            *out_len = m;
            return ST_OK;
        }
    }
    if (!pp->normalizer) {
        *out = p;
        *out_len = n;
        return ST_OK;
    }
    int rc = st_normalize(pp->normalizer, p, n, nb);
    if (rc != ST_OK) return rc;
    *out = nb->data;
    *out_len = nb->len;
    return ST_OK;
}

/* A piece of the raw text between added tokens: normalise, cut at the normalised added tokens, pre-tokenize. */
static int pipe_piece(const st_pipe *pp, const st_gen *gen, const char *p, size_t n, int origin, int ascii, st_ibuf *out,
                      st_pipe_scratch *s) {
    const char *t;
    size_t tn;
    int rc = pipe_normalize(pp, p, n, ascii, s, &t, &tn);
    if (rc != ST_OK) return rc;
    if (origin && pp->first_check && pp->normalizer && n) {
        /* Metaspace "first" prepends only to a piece starting at offset 0 of the text: when the normaliser
         * drops the first character, the piece starts further on (take the slow path: rare) */
        size_t clen;
        if ((unsigned char)p[0] < 0x80) clen = 1;
        else st_utf8_decode((const unsigned char *)p, &clen);
        s->keymap.len = 0;
        int prc = st_normalize(pp->normalizer, p, clen, &s->keymap);
        if (prc != ST_OK) return prc == ST_NOMEM ? ST_NOMEM : ST_HF;
        if (s->keymap.len == 0) return ST_HF;
    }
    if (!pp->norm.n_tokens || !may_hold(pp->norm.first, t, tn)) return pipe_words(pp, gen, t, tn, origin, out, s);
    /* the normalised text is in s->norm: keep it there while its segments are tokenized */
    st_segments *segs = &s->norm_segs;
    segs->len = 0;
    int r = st_added_split(&pp->norm, t, tn, segs);
    if (r == -1) return ST_NOMEM;
    if (r == -2) return ST_HF;
    for (size_t k = 0; k < segs->len; k++) {
        const st_segment *sg = &segs->data[k];
        if (sg->id >= 0) {
            rc = sg->id < s->id_limit ? append_ids(out, &sg->id, 1) : (s->bad_id = sg->id, ST_BADID);
        } else {
            rc = pipe_words(pp, gen, t + sg->start, sg->end - sg->start, origin && sg->start == 0, out, s);
        }
        if (rc != ST_OK) return rc;
    }
    return ST_OK;
}

int st_pipe_text(const st_pipe *pp, const st_gen *gen, const char *text, size_t len, int is_ascii, st_ibuf *out,
                 st_pipe_scratch *s) {
    if (!text || len > ((size_t)1 << 31)) return ST_HF; /* not valid Unicode (the slow path names it), or huge */
    size_t start = out->len;
    int rc = ST_OK;
    if (!pp->raw.n_tokens || !may_hold(pp->raw.first, text, len)) {
        if (len) rc = pipe_piece(pp, gen, text, len, 1, is_ascii, out, s);
    } else {
        st_segments *segs = &s->raw_segs;
        segs->len = 0;
        int r = st_added_split(&pp->raw, text, len, segs);
        if (r == -1) rc = ST_NOMEM;
        else if (r == -2) rc = ST_HF;
        /* pipe_piece reuses norm_segs and the other buffers, not raw_segs: the segments stay valid */
        for (size_t k = 0; rc == ST_OK && k < segs->len; k++) {
            const st_segment *sg = &segs->data[k];
            if (sg->id >= 0) rc = sg->id < s->id_limit ? append_ids(out, &sg->id, 1) : (s->bad_id = sg->id, ST_BADID);
            else rc = pipe_piece(pp, gen, text + sg->start, sg->end - sg->start, sg->start == 0, is_ascii, out, s);
        }
    }
    if (rc != ST_OK) out->len = start;
    return rc;
}
