/*
 * Normaliser programs: Hugging Face tokenizers' normalisers over UTF-8, exact against the installed
 * `tokenizers` (see unicode_data.h for the tables and the flags that send a text to the slow path).
 *
 * A program is a list of stages, each one pass from one buffer to the next:
 *   STREAM      per-char functions (clean_text, handle_chinese_chars, lowercase, mark filters, Nmt, ByteLevel),
 *               with at most one normal form (NFD / NFKD / NFC / NFKC) in the middle: `pre` functions run on
 *               the input chars, the normal form on their output (decomposition, canonical ordering,
 *               composition as unicode-normalization-alignments does it), `post` functions on its output.
 *               BertNormalizer(strip_accents, lowercase) is one stream stage: [clean, cjk] NFD [Mn, lower].
 *   STRIP, REPLACE (literal or a run of one char), PREPEND, PRECOMPILED (the sentencepiece charsmap, per
 *               extended grapheme cluster as tokenizers' Precompiled does it).
 * Fast paths: every stream stage maps an ASCII char through a 128-entry table (when all its functions keep
 * ASCII in ASCII), and an all-ASCII text runs the leading stream stages as one table pass.
 * No allocation per char: stage buffers start on the stack and grow by doubling; the canonical-ordering and
 * composition buffers start with 64 slots and only a longer run of combining marks allocates.
 */
#include "normalize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* ------------------------------------------------------------------ program */

enum { CF_CLEAN, CF_CJK, CF_LOWER, CF_FILTER_MN, CF_FILTER_MARK, CF_NMT, CF_BYTELEVEL };
static const int cf_max_out[] = {1, 3, 3, 1, 1, 1, 4};
static const char *const cf_names[] = {"clean", "cjk", "lower", "strip-Mn", "strip-marks", "nmt", "bytelevel"};
enum { NF_NONE, NF_NFD, NF_NFKD, NF_NFC, NF_NFKC };
static const char *const nf_names[] = {"", "NFD", "NFKD", "NFC", "NFKC"};
enum { SK_STREAM, SK_STRIP, SK_REPLACE, SK_REPLACE_RUN, SK_PREPEND, SK_PRECOMPILED };

#define MAX_CHAIN 16
#define CHAIN_MAX_OUT 64

typedef struct {
    uint32_t *units; /* the double array (as usize units in spm_precompiled) */
    size_t n_units;
    char *normalized; /* the normalised strings, NUL-separated */
    size_t n_normalized;
    int32_t ascii[128]; /* transform of one ASCII char: offset into normalized, -1: none, -2: slow path */
} st_charsmap;

typedef struct {
    int kind;
    /* stream */
    uint8_t pre[MAX_CHAIN], post[MAX_CHAIN];
    int npre, npost, form;
    int ascii_closed;      /* every function keeps ASCII in ASCII: `ascii` is the whole stage on one char */
    int16_t ascii[128];    /* output byte, or -1: removed */
    /* strip */
    int left, right;
    /* replace, prepend */
    char *s1, *s2;
    size_t n1, n2;
    uint32_t run_cp;
    size_t run_min;
    /* precompiled */
    st_charsmap *cm;
} st_stage;

struct st_normalizer {
    int n;
    st_stage *stages;
    int ascii_prefix;   /* the leading stream stages that are ascii_closed */
    int16_t ascii[128]; /* their composition (output byte or -1) */
};

/* GPT-2's bytes_to_unicode */
static uint16_t bytelevel_map[256];
static void bytelevel_init(void) {
    if (bytelevel_map['!']) return;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) bytelevel_map[b] = (uint16_t)b;
    }
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) bytelevel_map[b] = (uint16_t)(256 + n++);
    }
}

static inline int utf8_encode(uint32_t cp, unsigned char *o) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static inline int put_cp(st_cbuf *out, uint32_t cp) {
    if (out->len + 4 > out->cap && st_cbuf_reserve(out, 4)) return -1;
    out->len += (size_t)utf8_encode(cp, (unsigned char *)out->data + out->len);
    return 0;
}

static inline int put_bytes(st_cbuf *out, const char *s, size_t n) {
    if (!n) return 0;
    if (out->len + n > out->cap && st_cbuf_reserve(out, n)) return -1;
    memcpy(out->data + out->len, s, n);
    out->len += n;
    return 0;
}

/* ------------------------------------------------------------------ per-char functions */

#define HF (-1)

static inline int is_nmt_removed(uint32_t c) {
    return (c >= 1 && c <= 8) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == 0x8F || c == 0x9F;
}
static inline int is_nmt_space(uint32_t c) {
    return c == 9 || c == 10 || c == 12 || c == 13 || c == 0x1680 || (c >= 0x200B && c <= 0x200F) || c == 0x2028 ||
           c == 0x2029 || c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
}

/* One function on one char: its outputs into o (at most cf_max_out); the count, or HF. */
static int cf_apply(int f, uint32_t cp, uint32_t *o) {
    const st_uni_rec *r;
    switch (f) {
    case CF_CLEAN:
        r = st_uni_rec_of(cp);
        if (r->flags & (ST_UF_CONTROL | ST_UF_WHITESPACE)) return HF;
        if (cp == 0 || cp == 0xFFFD || (r->props & ST_UP_CONTROL)) return 0;
        o[0] = (r->props & ST_UP_BERT_SPACE) ? ' ' : cp;
        return 1;
    case CF_CJK:
        r = st_uni_rec_of(cp);
        if (r->flags & ST_UF_CJK) return HF;
        if (r->props & ST_UP_CJK) {
            o[0] = ' ';
            o[1] = cp;
            o[2] = ' ';
            return 3;
        }
        o[0] = cp;
        return 1;
    case CF_LOWER:
        r = st_uni_rec_of(cp);
        if (r->flags & ST_UF_LOWER) return HF;
        return st_uni_lower(cp, o);
    case CF_FILTER_MN:
        r = st_uni_rec_of(cp);
        if (r->flags & ST_UF_MN) return HF;
        if (r->props & ST_UP_MN) return 0;
        o[0] = cp;
        return 1;
    case CF_FILTER_MARK:
        r = st_uni_rec_of(cp);
        if (r->flags & ST_UF_MARK) return HF;
        if (r->props & ST_UP_MARK) return 0;
        o[0] = cp;
        return 1;
    case CF_NMT:
        if (is_nmt_removed(cp)) return 0;
        o[0] = is_nmt_space(cp) ? ' ' : cp;
        return 1;
    case CF_BYTELEVEL: {
        unsigned char b[4];
        int n = utf8_encode(cp, b);
        for (int i = 0; i < n; i++) o[i] = bytelevel_map[b[i]];
        return n;
    }
    }
    return HF;
}

/* The chain f[0..n) on one char: outputs into res (at most CHAIN_MAX_OUT); the count, or HF. */
static int chain_apply(const uint8_t *f, int n, uint32_t cp, uint32_t *res) {
    uint32_t a[CHAIN_MAX_OUT], b[CHAIN_MAX_OUT];
    uint32_t *cur = a, *nxt = b;
    int cnt = 1;
    cur[0] = cp;
    for (int k = 0; k < n; k++) {
        int m = 0;
        for (int i = 0; i < cnt; i++) {
            int r = cf_apply(f[k], cur[i], nxt + m);
            if (r < 0) return HF;
            m += r;
        }
        uint32_t *t = cur;
        cur = nxt;
        nxt = t;
        cnt = m;
        if (!cnt) return 0;
    }
    memcpy(res, cur, (size_t)cnt * sizeof(uint32_t));
    return cnt;
}

/* ------------------------------------------------------------------ normal forms */

#define NF_LOCAL 64

typedef struct {
    int form, compat, compose;
    uint32_t mask;
    const uint8_t *post;
    int npost;
    st_cbuf *out;
    /* canonical ordering: the pending non-starters */
    uint32_t *pcp;
    uint8_t *pccc;
    size_t np, pcap;
    uint32_t pcp_local[NF_LOCAL];
    uint8_t pccc_local[NF_LOCAL];
    /* composition (the Recompositions iterator of unicode-normalization-alignments) */
    int has_comp, last_ccc; /* last_ccc: -1 none */
    uint32_t comp;
    uint32_t *cb;
    size_t ncb, cbcap;
    uint32_t cb_local[NF_LOCAL];
} nf_state;

static void nf_init(nf_state *s, int form, const uint8_t *post, int npost, st_cbuf *out) {
    s->form = form;
    s->compat = form == NF_NFKD || form == NF_NFKC;
    s->compose = form == NF_NFC || form == NF_NFKC;
    s->mask = ST_UF_NFD | (s->compat ? ST_UF_NFKD : 0) | (s->compose ? ST_UF_COMPOSE : 0);
    s->post = post;
    s->npost = npost;
    s->out = out;
    s->pcp = s->pcp_local;
    s->pccc = s->pccc_local;
    s->np = 0;
    s->pcap = NF_LOCAL;
    s->has_comp = 0;
    s->last_ccc = -1;
    s->comp = 0;
    s->cb = s->cb_local;
    s->ncb = 0;
    s->cbcap = NF_LOCAL;
}

static void nf_release(nf_state *s) {
    if (s->pcp != s->pcp_local) free(s->pcp);
    if (s->pccc != s->pccc_local) free(s->pccc);
    if (s->cb != s->cb_local) free(s->cb);
}

/* the post chain, then UTF-8 out */
static int emit_post(nf_state *s, uint32_t cp) {
    if (!s->npost) return put_cp(s->out, cp) ? ST_NOMEM : ST_OK;
    uint32_t res[CHAIN_MAX_OUT];
    int n = chain_apply(s->post, s->npost, cp, res);
    if (n < 0) return ST_HF;
    for (int i = 0; i < n; i++)
        if (put_cp(s->out, res[i])) return ST_NOMEM;
    return ST_OK;
}

static int cb_push(nf_state *s, uint32_t cp) {
    if (s->ncb == s->cbcap) {
        size_t cap = s->cbcap * 2;
        uint32_t *d = malloc(cap * sizeof(uint32_t));
        if (!d) return ST_NOMEM;
        memcpy(d, s->cb, s->ncb * sizeof(uint32_t));
        if (s->cb != s->cb_local) free(s->cb);
        s->cb = d;
        s->cbcap = cap;
    }
    s->cb[s->ncb++] = cp;
    return ST_OK;
}

static int cb_purge(nf_state *s) {
    for (size_t i = 0; i < s->ncb; i++) {
        int rc = emit_post(s, s->cb[i]);
        if (rc) return rc;
    }
    s->ncb = 0;
    return ST_OK;
}

/* one char of the canonically ordered stream into the composer */
static int compose_feed(nf_state *s, uint32_t ch, int ch_class) {
    int rc;
    if (!s->has_comp) {
        if (ch_class != 0) return emit_post(s, ch);
        s->has_comp = 1;
        s->comp = ch;
        return ST_OK;
    }
    if (s->last_ccc < 0) {
        uint32_t r = st_uni_compose(s->comp, ch);
        if (r) {
            s->comp = r;
            return ST_OK;
        }
        if (ch_class == 0) {
            rc = emit_post(s, s->comp);
            s->comp = ch;
            return rc;
        }
        s->last_ccc = ch_class;
        return cb_push(s, ch);
    }
    if (s->last_ccc >= ch_class) {
        if (ch_class == 0) {
            rc = emit_post(s, s->comp);
            if (rc) return rc;
            rc = cb_purge(s);
            s->comp = ch;
            s->last_ccc = -1;
            return rc;
        }
        s->last_ccc = ch_class;
        return cb_push(s, ch);
    }
    uint32_t r = st_uni_compose(s->comp, ch);
    if (r) {
        s->comp = r;
        return ST_OK;
    }
    s->last_ccc = ch_class;
    return cb_push(s, ch);
}

static int compose_finish(nf_state *s) {
    if (s->has_comp) {
        int rc = emit_post(s, s->comp);
        if (rc) return rc;
        s->has_comp = 0;
    }
    int rc = cb_purge(s);
    s->last_ccc = -1;
    return rc;
}

static inline int emit_ordered(nf_state *s, uint32_t cp, int ccc) {
    return s->compose ? compose_feed(s, cp, ccc) : emit_post(s, cp);
}

/* stable sort of the pending run by class, then out */
static int pending_flush(nf_state *s) {
    size_t n = s->np;
    if (!n) return ST_OK;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = s->pcp[i];
            uint8_t k = s->pccc[i];
            size_t j = i;
            while (j > 0 && s->pccc[j - 1] > k) {
                s->pcp[j] = s->pcp[j - 1];
                s->pccc[j] = s->pccc[j - 1];
                j--;
            }
            s->pcp[j] = c;
            s->pccc[j] = k;
        }
        for (size_t i = 0; i < n; i++) {
            int rc = emit_ordered(s, s->pcp[i], s->pccc[i]);
            if (rc) return rc;
        }
    } else { /* a long run: counting sort (stable) */
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[s->pccc[i] + 1]++;
        for (int c = 1; c < 257; c++) count[c] += count[c - 1];
        uint32_t *tmp = malloc(n * sizeof(uint32_t));
        if (!tmp) return ST_NOMEM;
        for (size_t i = 0; i < n; i++) tmp[count[s->pccc[i]]++] = s->pcp[i];
        int rc = ST_OK;
        for (size_t i = 0; i < n && !rc; i++) rc = emit_ordered(s, tmp[i], st_uni_rec_of(tmp[i])->ccc);
        free(tmp);
        if (rc) return rc;
    }
    s->np = 0;
    return ST_OK;
}

static int pending_push(nf_state *s, uint32_t cp, uint8_t ccc) {
    if (s->np == s->pcap) {
        size_t cap = s->pcap * 2;
        uint32_t *d = malloc(cap * sizeof(uint32_t));
        uint8_t *k = malloc(cap);
        if (!d || !k) {
            free(d);
            free(k);
            return ST_NOMEM;
        }
        memcpy(d, s->pcp, s->np * sizeof(uint32_t));
        memcpy(k, s->pccc, s->np);
        if (s->pcp != s->pcp_local) free(s->pcp);
        if (s->pccc != s->pccc_local) free(s->pccc);
        s->pcp = d;
        s->pccc = k;
        s->pcap = cap;
    }
    s->pcp[s->np] = cp;
    s->pccc[s->np] = ccc;
    s->np++;
    return ST_OK;
}

static inline int ordered_put(nf_state *s, uint32_t cp, uint8_t ccc) {
    if (ccc == 0) {
        int rc = pending_flush(s);
        if (rc) return rc;
        return emit_ordered(s, cp, 0);
    }
    return pending_push(s, cp, ccc);
}

/* one char into the normal form (decomposition first) */
static int nf_feed(nf_state *s, uint32_t cp) {
    if (cp < 0x80) return ordered_put(s, cp, 0);
    const st_uni_rec *r = st_uni_rec_of(cp);
    if (r->flags & s->mask) return ST_HF;
    if (r->props & (s->compat ? ST_UP_KDECOMP : ST_UP_DECOMP)) {
        uint32_t d[ST_UNI_MAX_DECOMP];
        int n = st_uni_decompose(cp, s->compat, d);
        for (int i = 0; i < n; i++) {
            const st_uni_rec *q = st_uni_rec_of(d[i]);
            if (q->flags & s->mask) return ST_HF;
            int rc = ordered_put(s, d[i], q->ccc);
            if (rc) return rc;
        }
        if (n) return ST_OK;
    }
    return ordered_put(s, cp, r->ccc);
}

/* everything held back goes out */
static int nf_flush(nf_state *s) {
    int rc = pending_flush(s);
    if (rc) return rc;
    return s->compose ? compose_finish(s) : ST_OK;
}

/* ------------------------------------------------------------------ stages */

static int run_stream(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    nf_state nf;
    nf_init(&nf, st->form, st->form ? st->post : NULL, st->form ? st->npost : 0, out);
    const unsigned char *p = (const unsigned char *)in;
    int rc = ST_OK;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80 && st->ascii_closed) {
            size_t j = i + 1;
            while (j < len && p[j] < 0x80) j++;
            /* under composition the run's last char that the stage keeps may compose with the marks after it
               (the chars after it in the run, which the stage removes, must not separate them: "a\x1f\u0300"
               under Nmt + NFKC is "\u00e0"): it and the rest of the run take the per-char path */
            size_t stop = j;
            if (nf.compose && j < len) {
                stop = j - 1;
                while (stop > i && st->ascii[p[stop]] < 0) stop--;
            }
            if (stop > i) {
                if (st->form && (rc = nf_flush(&nf))) goto done;
                if (out->len + (stop - i) > out->cap && st_cbuf_reserve(out, stop - i)) {
                    rc = ST_NOMEM;
                    goto done;
                }
                char *o = out->data + out->len;
                size_t k = 0;
                for (size_t q = i; q < stop; q++) {
                    int v = st->ascii[p[q]];
                    o[k] = (char)v;
                    k += v >= 0;
                }
                out->len += k;
                i = stop;
                if (i == j) continue;
            }
        }
        size_t n;
        uint32_t cp = st_utf8_decode(p + i, &n);
        i += n;
        uint32_t res[CHAIN_MAX_OUT];
        int m = 1;
        res[0] = cp;
        if (st->npre) {
            m = chain_apply(st->pre, st->npre, cp, res);
            if (m < 0) {
                rc = ST_HF;
                goto done;
            }
        }
        for (int k = 0; k < m; k++) {
            if (st->form)
                rc = nf_feed(&nf, res[k]);
            else
                rc = put_cp(out, res[k]) ? ST_NOMEM : ST_OK;
            if (rc) goto done;
        }
    }
    if (st->form) rc = nf_flush(&nf);
done:
    nf_release(&nf);
    return rc;
}

/* the start of the UTF-8 char that ends at p[end - 1] */
static inline size_t char_start_before(const unsigned char *p, size_t end) {
    size_t k = end - 1;
    while (k > 0 && (p[k] & 0xC0) == 0x80) k--;
    return k;
}

static int run_strip(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, j = len;
    if (st->left) {
        while (i < len) {
            size_t n;
            uint32_t cp = st_utf8_decode(p + i, &n);
            const st_uni_rec *r = st_uni_rec_of(cp);
            if (r->flags & ST_UF_WHITESPACE) return ST_HF;
            if (!(r->props & ST_UP_WHITESPACE)) break;
            i += n;
        }
    }
    if (st->right) {
        while (j > i) {
            size_t k = char_start_before(p, j), n;
            uint32_t cp = st_utf8_decode(p + k, &n);
            const st_uni_rec *r = st_uni_rec_of(cp);
            if (r->flags & ST_UF_WHITESPACE) return ST_HF;
            if (!(r->props & ST_UP_WHITESPACE)) break;
            j = k;
        }
    }
    return put_bytes(out, in + i, j - i) ? ST_NOMEM : ST_OK;
}

static int run_replace(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    size_t i = 0;
    while (i < len) {
        const char *hit = st->n1 <= len - i ? memmem(in + i, len - i, st->s1, st->n1) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - in);
        if (put_bytes(out, in + i, at - i) || put_bytes(out, st->s2, st->n2)) return ST_NOMEM;
        i = at + st->n1;
    }
    return put_bytes(out, in + i, len - i) ? ST_NOMEM : ST_OK;
}

static int run_replace_run(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, copied = 0;
    while (i < len) {
        size_t n;
        uint32_t cp = st_utf8_decode(p + i, &n);
        if (cp != st->run_cp) {
            i += n;
            continue;
        }
        size_t start = i, count = 0;
        while (i < len) {
            size_t m;
            if (st_utf8_decode(p + i, &m) != st->run_cp) break;
            i += m;
            count++;
        }
        if (count >= st->run_min) {
            if (put_bytes(out, in + copied, start - copied) || put_bytes(out, st->s2, st->n2)) return ST_NOMEM;
            copied = i;
        }
    }
    return put_bytes(out, in + copied, len - copied) ? ST_NOMEM : ST_OK;
}

static int run_prepend(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    if (len && put_bytes(out, st->s1, st->n1)) return ST_NOMEM;
    return put_bytes(out, in, len) ? ST_NOMEM : ST_OK;
}

/* --- Precompiled */

/* spm_precompiled's DoubleArray::common_prefix_search, keeping only its first result (what transform uses),
 * but walking the whole key as it does: an index out of the array panics in Rust, so it is the slow path
 * here. Returns 1 with *value, 0 (no prefix is a key), or -1 (slow path). */
static int cm_search(const st_charsmap *cm, const unsigned char *key, size_t n, uint32_t *value) {
    if (!cm->n_units) return -1;
    size_t node = 0;
    uint32_t unit = cm->units[0];
    int found = 0;
#define OFFSET(u) ((size_t)((u) >> 10) << (((u) & (1u << 9)) >> 6))
    node ^= OFFSET(unit);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = key[i];
        if (!c) break;
        node ^= c;
        if (node >= cm->n_units) return -1;
        unit = cm->units[node];
        if ((unit & ((1u << 31) | 0xFFu)) != c) break;
        node ^= OFFSET(unit);
        if ((unit >> 8) & 1) {
            if (node >= cm->n_units) return -1;
            if (!found) {
                *value = cm->units[node] & ((1u << 31) - 1);
                found = 1;
            }
        }
    }
#undef OFFSET
    return found;
}

/* the normalised string at value: [value, first NUL) -- a slice Rust would refuse is the slow path */
static int cm_string(const st_charsmap *cm, uint32_t value, const char **s, size_t *n) {
    size_t i = value;
    if (i > cm->n_normalized) return -1;
    if (i < cm->n_normalized && ((unsigned char)cm->normalized[i] & 0xC0) == 0x80) return -1;
    size_t e = i;
    while (e < cm->n_normalized && cm->normalized[e]) e++;
    *s = cm->normalized + i;
    *n = e - i;
    return 0;
}

/* transform(chunk) into out: 1 done, 0 no key, ST_HF as -1 */
static int cm_transform(const st_charsmap *cm, const char *chunk, size_t n, st_cbuf *out) {
    uint32_t v;
    int f = cm_search(cm, (const unsigned char *)chunk, n, &v);
    if (f <= 0) return f;
    const char *s;
    size_t sl;
    if (cm_string(cm, v, &s, &sl)) return -1;
    if (put_bytes(out, s, sl)) return -2;
    return 1;
}

/* extended grapheme cluster boundaries, as unicode-segmentation (UAX #29 with GB9c, GB11, GB12/13) */
typedef struct {
    int prev; /* gcb byte of the previous char, -1 at the start */
    int ri, ep, zwj_ep, incb;
} gcb_state;

static inline int gcb_break(const gcb_state *s, int g) {
    if (s->prev < 0) return 1;
    int pc = s->prev & 15, c = g & 15;
    if (pc == ST_GCB_CR && c == ST_GCB_LF) return 0;
    if (pc == ST_GCB_CONTROL || pc == ST_GCB_CR || pc == ST_GCB_LF) return 1;
    if (c == ST_GCB_CONTROL || c == ST_GCB_CR || c == ST_GCB_LF) return 1;
    if (pc == ST_GCB_L && (c == ST_GCB_L || c == ST_GCB_V || c == ST_GCB_LV || c == ST_GCB_LVT)) return 0;
    if ((pc == ST_GCB_LV || pc == ST_GCB_V) && (c == ST_GCB_V || c == ST_GCB_T)) return 0;
    if ((pc == ST_GCB_LVT || pc == ST_GCB_T) && c == ST_GCB_T) return 0;
    if (c == ST_GCB_EXTEND || c == ST_GCB_ZWJ || c == ST_GCB_SPACINGMARK || pc == ST_GCB_PREPEND) return 0;
    if (c == ST_GCB_INCB_CONSONANT) return s->incb != 2;
    if (pc == ST_GCB_ZWJ && c == ST_GCB_EXTPICT) return !s->zwj_ep;
    if (pc == ST_GCB_RI && c == ST_GCB_RI) return s->ri % 2 == 0;
    return 1;
}

static inline void gcb_advance(gcb_state *s, int g) {
    int c = g & 15;
    s->ri = c == ST_GCB_RI ? s->ri + 1 : 0;
    s->zwj_ep = c == ST_GCB_ZWJ && s->ep;
    s->ep = c == ST_GCB_EXTPICT || (s->ep && c == ST_GCB_EXTEND);
    if (c == ST_GCB_INCB_CONSONANT)
        s->incb = 1;
    else if (g & ST_GCB_INCB_LINKER)
        s->incb = s->incb ? 2 : 0;
    else if (!(g & ST_GCB_INCB_EXTEND))
        s->incb = 0;
    s->prev = g;
}

static int run_precompiled(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    const st_charsmap *cm = st->cm;
    const unsigned char *p = (const unsigned char *)in;
    gcb_state gs = {-1, 0, 0, 0, 0};
    size_t i = 0;
    /* the gcb of the char at i (decoded once; the cluster loop looks one char ahead) */
    while (i < len) {
        unsigned char b = p[i];
        if (b < 0x80 && (i + 1 == len || (p[i + 1] < 0x80 && !(b == '\r' && p[i + 1] == '\n')))) {
            /* an ASCII char followed by ASCII (or the end): a cluster of its own */
            int32_t a = cm->ascii[b];
            if (a == -2) return ST_HF;
            if (a >= 0) {
                const char *s;
                size_t sl;
                if (cm_string(cm, (uint32_t)a, &s, &sl)) return ST_HF;
                if (put_bytes(out, s, sl)) return ST_NOMEM;
            } else if (put_bytes(out, (const char *)p + i, 1))
                return ST_NOMEM;
            gcb_advance(&gs, (int)st_uni_rec_of(b)->gcb);
            i++;
            continue;
        }
        /* one cluster [i, e) */
        size_t n;
        uint32_t cp = st_utf8_decode(p + i, &n);
        const st_uni_rec *r = st_uni_rec_of(cp);
        if (r->flags & ST_UF_GRAPHEME) return ST_HF;
        gs.prev = -1; /* a cluster starts here (the previous one ended) */
        gcb_advance(&gs, r->gcb);
        size_t e = i + n, chars = 1;
        while (e < len) {
            uint32_t c2 = st_utf8_decode(p + e, &n);
            const st_uni_rec *r2 = st_uni_rec_of(c2);
            if (r2->flags & ST_UF_GRAPHEME) return ST_HF;
            if (gcb_break(&gs, r2->gcb)) break;
            gcb_advance(&gs, r2->gcb);
            e += n;
            chars++;
        }
        int rc = 0;
        if (e - i < 6) {
            rc = cm_transform(cm, in + i, e - i, out);
            if (rc == -1) return ST_HF;
            if (rc == -2) return ST_NOMEM;
        }
        if (rc == 0) {
            for (size_t q = i; q < e; q += n) {
                st_utf8_decode(p + q, &n);
                int t = cm_transform(cm, in + q, n, out);
                if (t == -1) return ST_HF;
                if (t == -2) return ST_NOMEM;
                if (t == 0 && put_bytes(out, in + q, n)) return ST_NOMEM;
            }
        }
        (void)chars;
        i = e;
    }
    return ST_OK;
}

/* ------------------------------------------------------------------ running a program */

static int run_stage(const st_stage *st, const char *in, size_t len, st_cbuf *out) {
    switch (st->kind) {
    case SK_STREAM:
        return run_stream(st, in, len, out);
    case SK_STRIP:
        return run_strip(st, in, len, out);
    case SK_REPLACE:
        return run_replace(st, in, len, out);
    case SK_REPLACE_RUN:
        return run_replace_run(st, in, len, out);
    case SK_PREPEND:
        return run_prepend(st, in, len, out);
    case SK_PRECOMPILED:
        return run_precompiled(st, in, len, out);
    }
    return ST_HF;
}

static int all_ascii(const char *s, size_t n) {
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++) acc |= (unsigned char)s[i];
    return !(acc & 0x8080808080808080ull);
}

#define LOCAL_BUF 2048

int st_normalize(const st_normalizer *nz, const char *in, size_t len, st_cbuf *out) {
    if (!nz->n) return put_bytes(out, in, len) ? ST_NOMEM : ST_OK;
    char local[2][LOCAL_BUF];
    st_cbuf tmp[2] = {{local[0], 0, LOCAL_BUF, 1}, {local[1], 0, LOCAL_BUF, 1}};
    const char *cur = in;
    size_t cur_len = len;
    int first = 0, rc = ST_OK, t = 0;
    if (nz->ascii_prefix && all_ascii(in, len)) {
        /* the leading stream stages in one table pass */
        st_cbuf *dst = nz->ascii_prefix == nz->n ? out : &tmp[t];
        if (dst->len + len > dst->cap && st_cbuf_reserve(dst, len)) {
            rc = ST_NOMEM;
            goto done;
        }
        char *o = dst->data + dst->len;
        size_t k = 0;
        const unsigned char *p = (const unsigned char *)in;
        for (size_t i = 0; i < len; i++) {
            int v = nz->ascii[p[i]];
            o[k] = (char)v;
            k += v >= 0;
        }
        if (dst == out) {
            out->len += k;
            goto done;
        }
        dst->len = k;
        cur = dst->data;
        cur_len = k;
        first = nz->ascii_prefix;
        t ^= 1;
    }
    for (int s = first; s < nz->n; s++) {
        st_cbuf *dst = s == nz->n - 1 ? out : &tmp[t];
        if (dst != out) dst->len = 0;
        rc = run_stage(&nz->stages[s], cur, cur_len, dst);
        if (rc) goto done;
        if (dst != out) {
            cur = dst->data;
            cur_len = dst->len;
            t ^= 1;
        }
    }
done:
    st_cbuf_free(&tmp[0]);
    st_cbuf_free(&tmp[1]);
    return rc;
}

/* ------------------------------------------------------------------ building */

static void charsmap_free(st_charsmap *cm) {
    if (!cm) return;
    free(cm->units);
    free(cm->normalized);
    free(cm);
}

static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else
            return 0;
        if (i + k >= n) return 0;
        for (size_t q = 1; q <= k; q++) {
            if ((s[i + q] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + q] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* spm_precompiled's parse: [u32 trie size in bytes][trie: size / 4 little-endian u32][normalized: UTF-8] */
static st_charsmap *charsmap_new(const unsigned char *blob, size_t n, char *err, size_t errlen) {
    if (n < 4) {
        snprintf(err, errlen, "Precompiled: the charsmap holds %zu bytes, fewer than its 4-byte header", n);
        return NULL;
    }
    uint32_t trie_size = (uint32_t)blob[0] | ((uint32_t)blob[1] << 8) | ((uint32_t)blob[2] << 16) | ((uint32_t)blob[3] << 24);
    size_t units = trie_size / 4;
    if (units > (n - 4) / 4) {
        snprintf(err, errlen, "Precompiled: the charsmap's trie (%u bytes) is longer than the charsmap (%zu bytes)",
                 trie_size, n);
        return NULL;
    }
    st_charsmap *cm = calloc(1, sizeof(*cm));
    if (!cm) goto nomem;
    cm->n_units = units;
    cm->units = malloc((units ? units : 1) * sizeof(uint32_t));
    if (!cm->units) goto nomem;
    for (size_t i = 0; i < units; i++) {
        const unsigned char *q = blob + 4 + 4 * i;
        cm->units[i] = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
    }
    size_t off = 4 + 4 * units;
    cm->n_normalized = n - off;
    cm->normalized = malloc(cm->n_normalized ? cm->n_normalized : 1);
    if (!cm->normalized) goto nomem;
    memcpy(cm->normalized, blob + off, cm->n_normalized);
    if (!valid_utf8((const unsigned char *)cm->normalized, cm->n_normalized)) {
        snprintf(err, errlen, "Precompiled: the charsmap's normalised strings are not valid UTF-8");
        charsmap_free(cm);
        return NULL;
    }
    for (int b = 0; b < 128; b++) {
        unsigned char c = (unsigned char)b;
        uint32_t v;
        int f = cm_search(cm, &c, 1, &v);
        if (f < 0 || (st_uni_rec_of((uint32_t)b)->flags & ST_UF_GRAPHEME))
            cm->ascii[b] = -2;
        else if (f == 0)
            cm->ascii[b] = -1;
        else {
            const char *s;
            size_t sl;
            cm->ascii[b] = cm_string(cm, v, &s, &sl) ? -2 : (int32_t)v;
        }
    }
    return cm;
nomem:
    charsmap_free(cm);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void st_normalizer_free(st_normalizer *nz) {
    if (!nz) return;
    for (int i = 0; i < nz->n; i++) {
        free(nz->stages[i].s1);
        free(nz->stages[i].s2);
        charsmap_free(nz->stages[i].cm);
    }
    free(nz->stages);
    free(nz);
}

/* the stage's table on ASCII, when every function keeps one ASCII char as at most one ASCII char */
static void stream_ascii(st_stage *st) {
    st->ascii_closed = 1;
    for (int b = 0; b < 128; b++) {
        uint32_t res[CHAIN_MAX_OUT], res2[CHAIN_MAX_OUT];
        int m = chain_apply(st->pre, st->npre, (uint32_t)b, res);
        if (m == 1 && st->npost) {
            m = chain_apply(st->post, st->npost, res[0], res2);
            if (m == 1) res[0] = res2[0];
        }
        if (m < 0 || m > 1 || (m == 1 && res[0] >= 0x80)) {
            st->ascii_closed = 0;
            return;
        }
        st->ascii[b] = (int16_t)(m ? (int)res[0] : -1);
    }
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, s, n);
    return d;
}

st_normalizer *st_normalizer_build(const st_norm_step *steps, int n, char *err, size_t errlen) {
    bytelevel_init();
    st_normalizer *nz = calloc(1, sizeof(*nz));
    /* at most: every step a stage, plus BERT's strip splitting one */
    if (nz) nz->stages = calloc((size_t)(2 * n + 1), sizeof(st_stage));
    if (!nz || !nz->stages) goto nomem;
    st_stage *cur = NULL; /* the open stream stage */
    int expansion = 1;
    for (int k = 0; k < n; k++) {
        const st_norm_step *sp = &steps[k];
        int cf = -1, form = NF_NONE;
        switch (sp->kind) {
        case ST_NS_BERT_CLEAN: cf = CF_CLEAN; break;
        case ST_NS_BERT_CJK: cf = CF_CJK; break;
        case ST_NS_LOWERCASE: cf = CF_LOWER; break;
        case ST_NS_STRIP_ACCENTS: cf = CF_FILTER_MARK; break;
        case ST_NS_NMT: cf = CF_NMT; break;
        case ST_NS_BYTELEVEL: cf = CF_BYTELEVEL; break;
        case ST_NS_NFD: form = NF_NFD; break;
        case ST_NS_NFKD: form = NF_NFKD; break;
        case ST_NS_NFC: form = NF_NFC; break;
        case ST_NS_NFKC: form = NF_NFKC; break;
        case ST_NS_BERT_STRIP: form = NF_NFD; break; /* then CF_FILTER_MN, below */
        default: break;
        }
        if (cf >= 0 || form) {
            /* a stream step: joins the open stream stage when it fits */
            int fits = cur != NULL;
            if (fits && form && cur->form) fits = 0;
            if (fits && cf >= 0 && ((cur->form ? cur->npost : cur->npre) >= MAX_CHAIN ||
                                    expansion * cf_max_out[cf] > CHAIN_MAX_OUT))
                fits = 0;
            if (!fits) {
                cur = &nz->stages[nz->n++];
                cur->kind = SK_STREAM;
                expansion = 1;
            }
            if (form) {
                cur->form = form;
                expansion = 1; /* the post chain starts after the normal form */
            } else {
                if (cur->form)
                    cur->post[cur->npost++] = (uint8_t)cf;
                else
                    cur->pre[cur->npre++] = (uint8_t)cf;
                expansion *= cf_max_out[cf];
            }
            if (sp->kind == ST_NS_BERT_STRIP) {
                cur->post[cur->npost++] = CF_FILTER_MN;
            }
            continue;
        }
        cur = NULL;
        st_stage *st = &nz->stages[nz->n++];
        switch (sp->kind) {
        case ST_NS_STRIP:
            st->kind = SK_STRIP;
            st->left = sp->a;
            st->right = sp->b;
            break;
        case ST_NS_REPLACE:
            if (!sp->n1) {
                snprintf(err, errlen, "Replace: an empty pattern");
                st_normalizer_free(nz);
                return NULL;
            }
            st->kind = SK_REPLACE;
            st->s1 = dup_bytes(sp->s1, sp->n1);
            st->s2 = dup_bytes(sp->s2, sp->n2);
            st->n1 = sp->n1;
            st->n2 = sp->n2;
            if (!st->s1 || !st->s2) goto nomem;
            break;
        case ST_NS_REPLACE_RUN:
            st->kind = SK_REPLACE_RUN;
            st->run_cp = sp->cp;
            st->run_min = sp->a > 0 ? (size_t)sp->a : 1;
            st->s2 = dup_bytes(sp->s2, sp->n2);
            st->n2 = sp->n2;
            if (!st->s2) goto nomem;
            break;
        case ST_NS_PREPEND:
            st->kind = SK_PREPEND;
            st->s1 = dup_bytes(sp->s1, sp->n1);
            st->n1 = sp->n1;
            if (!st->s1) goto nomem;
            break;
        case ST_NS_PRECOMPILED:
            st->kind = SK_PRECOMPILED;
            st->cm = charsmap_new((const unsigned char *)sp->s1, sp->n1, err, errlen);
            if (!st->cm) {
                st_normalizer_free(nz);
                return NULL;
            }
            break;
        default:
            snprintf(err, errlen, "unknown normaliser step %d", (int)sp->kind);
            st_normalizer_free(nz);
            return NULL;
        }
    }
    /* a stream stage without a normal form keeps all its functions in `pre` */
    for (int s = 0; s < nz->n; s++)
        if (nz->stages[s].kind == SK_STREAM) stream_ascii(&nz->stages[s]);
    for (int b = 0; b < 128; b++) nz->ascii[b] = (int16_t)b;
    while (nz->ascii_prefix < nz->n && nz->stages[nz->ascii_prefix].kind == SK_STREAM &&
           nz->stages[nz->ascii_prefix].ascii_closed) {
        const st_stage *st = &nz->stages[nz->ascii_prefix];
        for (int b = 0; b < 128; b++)
            if (nz->ascii[b] >= 0) nz->ascii[b] = st->ascii[nz->ascii[b]];
        nz->ascii_prefix++;
    }
    return nz;
nomem:
    st_normalizer_free(nz);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void st_normalizer_describe(const st_normalizer *nz, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = 0;
#define ADD(...)                                                          \
    do {                                                                  \
        if (o < len) {                                                    \
            int w_ = snprintf(buf + o, len - o, __VA_ARGS__);             \
            if (w_ > 0) o += (size_t)w_;                                  \
        }                                                                 \
    } while (0)
    if (!nz->n) ADD("identity");
    for (int s = 0; s < nz->n; s++) {
        const st_stage *st = &nz->stages[s];
        if (s) ADD(" | ");
        switch (st->kind) {
        case SK_STREAM:
            ADD("stream[");
            for (int i = 0; i < st->npre; i++) ADD("%s%s", i ? " " : "", cf_names[st->pre[i]]);
            if (st->form) ADD("%s%s", st->npre ? " " : "", nf_names[st->form]);
            for (int i = 0; i < st->npost; i++) ADD(" %s", cf_names[st->post[i]]);
            ADD("]%s", st->ascii_closed ? "" : " (no ASCII table)");
            break;
        case SK_STRIP: ADD("strip(%s%s)", st->left ? "left" : "", st->right ? (st->left ? ",right" : "right") : ""); break;
        case SK_REPLACE: ADD("replace(%zu bytes -> %zu bytes)", st->n1, st->n2); break;
        case SK_REPLACE_RUN: ADD("replace-run(U+%04X x>=%zu -> %zu bytes)", st->run_cp, st->run_min, st->n2); break;
        case SK_PREPEND: ADD("prepend(%zu bytes)", st->n1); break;
        case SK_PRECOMPILED: ADD("precompiled(%zu trie units, %zu bytes of strings)", st->cm->n_units, st->cm->n_normalized); break;
        }
    }
    ADD("; ASCII fast path: %d stage%s", nz->ascii_prefix, nz->ascii_prefix == 1 ? "" : "s");
#undef ADD
}
