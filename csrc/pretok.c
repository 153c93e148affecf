/*
 * Pre-tokenizers over all of Unicode, as `tokenizers` cuts a normalised piece of text:
 *
 *   BertPreTokenizer   whitespace removed, punctuation isolated (Rust is_whitespace, BERT punctuation)
 *   Whitespace         the matches of \w+|[^\w\s]+ (regex crate classes)
 *   WhitespaceSplit    whitespace removed
 *   Punctuation        a split at every punctuation character, with its behaviour
 *   Digits             a split at every numeric character: isolated (individual_digits) or contiguous
 *   CharDelimiterSplit a split at one character, removed
 *   Split              a literal string, the GPT-2 regex or the cl100k / Llama-3 / Qwen2 regex, with its
 *                      behaviour and invert (other regexes are refused by staticst.tokenization.native)
 *   Metaspace          spaces -> the replacement, prepended (always / first / never), split before it
 *   ByteLevel          a prefix space, the GPT-2 split, each byte -> its character (or deferred: a word's key
 *                      is then its text before the mapping, which the model's input gets on a miss)
 *   Sequence           the operations in turn, each on every piece the previous left
 *
 * A split follows NormalizedString::split: the pattern gives (span, is_match) events over a piece, the
 * behaviour turns them into pieces (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous), and
 * empty pieces are dropped. Character classes come from st_char_classes; a character on which the tables
 * are not proven to agree with `tokenizers` sends the text down the exact slow path (ST_HF).
 */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

int st_pieces_push(st_pieces *p, uint32_t off, uint32_t len, uint32_t origin) {
    if (p->intr && (++p->ticks & 0xFFFF) == 0 && st_interrupt_poll(p->intr)) {
        p->stopped = 1;
        return -1;
    }
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        st_piece *d = realloc(p->data, cap * sizeof(st_piece));
        if (!d) return -1;
        p->data = d;
        p->cap = cap;
    }
    p->data[p->len++] = (st_piece){off, len, origin};
    return 0;
}

void st_pretok_work_free(st_pretok_work *w) {
    free(w->a.data);
    free(w->b.data);
    st_cbuf_free(&w->buf[0]);
    st_cbuf_free(&w->buf[1]);
    memset(w, 0, sizeof(*w));
}

void st_pretok_free(st_pretok *p) {
    for (int i = 0; i < p->n_ops; i++) free(p->ops[i].str);
    p->n_ops = 0;
}

/* ------------------------------------------------------------------ behaviours */

typedef struct {
    st_pieces *out;
    int behavior;
    uint32_t pstart, porigin; /* the piece being split: a sub-piece starting where it starts keeps its origin */
    int have, flag, prev_flag;
    uint32_t s, e;
    int err;
} beh;

static inline void emit(beh *b, uint32_t s, uint32_t e) {
    if (e > s && st_pieces_push(b->out, s, e - s, b->porigin && s == b->pstart)) b->err = 1;
}

static inline void beh_start(beh *b, st_pieces *out, int behavior, const st_piece *parent) {
    b->out = out;
    b->behavior = behavior;
    b->pstart = parent->off;
    b->porigin = parent->origin;
    b->have = b->flag = b->prev_flag = 0;
}

static inline void beh_event(beh *b, uint32_t s, uint32_t e, int flag) {
    switch (b->behavior) {
    case ST_REMOVED:
        if (!flag) emit(b, s, e);
        break;
    case ST_ISOLATED:
        emit(b, s, e);
        break;
    case ST_CONTIGUOUS: /* runs of events with the same flag become one piece */
        if (b->have && b->flag == flag) {
            b->e = e;
        } else {
            if (b->have) emit(b, b->s, b->e);
            b->have = 1;
            b->s = s;
            b->e = e;
            b->flag = flag;
        }
        break;
    case ST_MERGED_PREV: /* a match after a non-match joins the piece before it */
        if (flag && !b->prev_flag && b->have) {
            b->e = e;
        } else {
            if (b->have) emit(b, b->s, b->e);
            b->have = 1;
            b->s = s;
            b->e = e;
        }
        b->prev_flag = flag;
        break;
    case ST_MERGED_NEXT: /* a match before a non-match joins the piece after it */
        if (b->have) {
            b->have = 0;
            if (!flag) {
                emit(b, b->s, e);
                return;
            }
            emit(b, b->s, b->e);
        }
        if (flag) {
            b->have = 1;
            b->s = s;
            b->e = e;
        } else {
            emit(b, s, e);
        }
        break;
    }
}

static inline void beh_end(beh *b) {
    if (b->have) emit(b, b->s, b->e);
    b->have = 0;
}

/* ------------------------------------------------------------------ the regexes, by hand */

/* The classes at s[i]; *unsure is set when a class the operation asks about is not proven there. The
 * operations pass the classes they use as `want` (their unsure bits are checked). */
static inline uint32_t cls_of(const unsigned char *s, size_t i, size_t *len, int *unsure, uint32_t used) {
    uint32_t c = st_classes_at(s, i, len);
    if ((c >> ST_C_UNSURE_SHIFT) & used) *unsure = 1;
    return c;
}
#define cls(s, i, len, unsure) cls_of(s, i, len, unsure, used)

static inline size_t run_of(const unsigned char *s, size_t i, size_t n, uint32_t want, int *unsure) {
    const uint32_t used = ST_C_L | ST_C_N | ST_C_OSPACE;
    size_t len;
    while (i < n && (cls(s, i, &len, unsure) & want)) i += len;
    return i;
}

#define OTHER(c) (!((c) & (ST_C_OSPACE | ST_C_L | ST_C_N)))

static inline size_t run_other(const unsigned char *s, size_t i, size_t n, int *unsure) {
    const uint32_t used = ST_C_L | ST_C_N | ST_C_OSPACE;
    size_t len;
    while (i < n) {
        uint32_t c = cls(s, i, &len, unsure);
        if (!OTHER(c)) break;
        i += len;
    }
    return i;
}

/* \s+(?!\S)|\s+ at i (s[i] is \s): the run, less its last character when a non-space follows a longer run */
static inline size_t space_tail(const unsigned char *s, size_t i, size_t n, int *unsure) {
    const uint32_t used = ST_C_L | ST_C_N | ST_C_OSPACE;
    size_t j = i, last = i, len;
    while (j < n && (cls(s, j, &len, unsure) & ST_C_OSPACE)) {
        last = j;
        j += len;
    }
    if (j == n || last == i) return j;
    return last;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (Oniguruma): the end of the match at i */
static size_t match_gpt2(const unsigned char *s, size_t i, size_t n, int *unsure) {
    const uint32_t used = ST_C_L | ST_C_N | ST_C_OSPACE;
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char c = s[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n && ((c == 'r' && s[i + 2] == 'e') || (c == 'v' && s[i + 2] == 'e') || (c == 'l' && s[i + 2] == 'l')))
            return i + 3;
    }
    size_t len0, len1;
    if (s[i] == ' ' && i + 1 < n) {
        uint32_t c1 = cls(s, i + 1, &len1, unsure);
        if (c1 & ST_C_L) return run_of(s, i + 1 + len1, n, ST_C_L, unsure);
        if (c1 & ST_C_N) return run_of(s, i + 1 + len1, n, ST_C_N, unsure);
        if (OTHER(c1)) return run_other(s, i + 1 + len1, n, unsure);
    }
    uint32_t c0 = cls(s, i, &len0, unsure);
    if (c0 & ST_C_L) return run_of(s, i + len0, n, ST_C_L, unsure);
    if (c0 & ST_C_N) return run_of(s, i + len0, n, ST_C_N, unsure);
    if (OTHER(c0)) return run_other(s, i + len0, n, unsure);
    return space_tail(s, i, n, unsure);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: the end, or 0 */
static size_t contraction_ci(const unsigned char *s, size_t i, size_t n) {
    if (s[i] != '\'' || i + 1 >= n) return 0;
    unsigned char c = s[i + 1] | 0x20;
    if (s[i + 1] < 0x80) {
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n && s[i + 2] < 0x80) {
            unsigned char d = s[i + 2] | 0x20;
            if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
        }
        return 0;
    }
    /* U+017F LATIN SMALL LETTER LONG S case-folds to s */
    if (i + 2 < n && s[i + 1] == 0xC5 && s[i + 2] == 0xBF) return i + 3;
    return 0;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_cl100k(const unsigned char *s, size_t i, size_t n, int num_max, int *unsure) {
    const uint32_t used = ST_C_L | ST_C_N | ST_C_OSPACE;
    size_t e = contraction_ci(s, i, n);
    if (e) return e;
    size_t len0, len1;
    uint32_t c0 = cls(s, i, &len0, unsure);
    if (c0 & ST_C_L) return run_of(s, i + len0, n, ST_C_L, unsure);
    int crlf0 = s[i] == '\r' || s[i] == '\n';
    if (!crlf0 && !(c0 & ST_C_N) && i + len0 < n) {
        uint32_t c1 = cls(s, i + len0, &len1, unsure);
        if (c1 & ST_C_L) return run_of(s, i + len0 + len1, n, ST_C_L, unsure);
    }
    if (c0 & ST_C_N) {
        size_t j = i + len0;
        int count = 1;
        while (j < n && (num_max <= 0 || count < num_max) && (cls(s, j, &len1, unsure) & ST_C_N)) {
            j += len1;
            count++;
        }
        return j;
    }
    size_t start = i;
    if (s[i] == ' ' && i + 1 < n) {
        uint32_t c1 = cls(s, i + 1, &len1, unsure);
        if (OTHER(c1)) start = i + 1;
    }
    if (start != i || OTHER(c0)) {
        size_t j = run_other(s, start, n, unsure);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* s[i] is \s: \s*[\r\n]+ ends after the run's last CR / LF */
    size_t j = i, last_crlf = 0, have_crlf = 0, len;
    while (j < n && (cls(s, j, &len, unsure) & ST_C_OSPACE)) {
        if (s[j] == '\r' || s[j] == '\n') {
            last_crlf = j;
            have_crlf = 1;
        }
        j += len;
    }
    if (have_crlf) return last_crlf + 1;
    return space_tail(s, i, n, unsure);
}

/* ------------------------------------------------------------------ ByteLevel's bytes -> characters */

static char bl_bytes[256][2];
static uint8_t bl_len[256];
static int bl_ready;

void st_bytelevel_init(void) {
    if (bl_ready) return;
    /* bytes_char(): printable Latin-1 bytes map to themselves, the others to 256, 257, ... in byte order */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : 256u + (uint32_t)n++;
        if (cp < 0x80) {
            bl_bytes[b][0] = (char)cp;
            bl_len[b] = 1;
        } else {
            bl_bytes[b][0] = (char)(0xC0 | (cp >> 6));
            bl_bytes[b][1] = (char)(0x80 | (cp & 0x3F));
            bl_len[b] = 2;
        }
    }
    bl_ready = 1;
}

int st_bytelevel_map(const char *s, size_t n, st_cbuf *out) {
    if (!bl_ready) st_bytelevel_init(); /* filled when a Pipeline is built (GIL held); this is a safety net */
    if (st_cbuf_reserve(out, 2 * n)) return ST_NOMEM;
    char *w = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        w[0] = bl_bytes[b][0];
        if (bl_len[b] == 2) w[1] = bl_bytes[b][1];
        w += bl_len[b];
    }
    out->len = (size_t)(w - out->data);
    return ST_OK;
}

/* ------------------------------------------------------------------ one operation over every piece */

/* Split every piece of `in` (over buf) by op's pattern and behaviour into `out`. */
/* The classes an operation asks about (their unsure bits matter). */
static uint32_t classes_used(const st_pt_op *op) {
    switch (op->kind) {
    case ST_PT_BERT: return ST_C_WS | ST_C_PUNCT;
    case ST_PT_WSSPLIT: return ST_C_WS;
    case ST_PT_WHITESPACE: return ST_C_WORD | ST_C_SPACE;
    case ST_PT_CLASS: return op->classes;
    case ST_PT_GPT2:
    case ST_PT_CL100K:
    case ST_PT_BYTELEVEL: return ST_C_L | ST_C_N | ST_C_OSPACE;
    default: return 0;
    }
}

static int split_pieces(const st_pt_op *op, const char *buf, const st_pieces *in, st_pieces *out, int *unsure) {
    const unsigned char *s = (const unsigned char *)buf;
    const uint32_t used = classes_used(op);
    beh b;
    b.err = 0;
    for (size_t k = 0; k < in->len; k++) {
        const st_piece *pc = &in->data[k];
        size_t i = pc->off, n = (size_t)pc->off + pc->len, len;
        switch (op->kind) {
        case ST_PT_BERT: /* runs of other characters, and single punctuation characters */
            while (i < n) {
                uint32_t c = cls(s, i, &len, unsure);
                if (c & ST_C_WS) {
                    i += len;
                    continue;
                }
                size_t start = i;
                i += len;
                if (!(c & ST_C_PUNCT))
                    while (i < n) {
                        uint32_t d = cls(s, i, &len, unsure);
                        if (d & (ST_C_WS | ST_C_PUNCT)) break;
                        i += len;
                    }
                if (st_pieces_push(out, (uint32_t)start, (uint32_t)(i - start), pc->origin && start == pc->off))
                    return ST_NOMEM;
            }
            break;
        case ST_PT_WSSPLIT:
        case ST_PT_WHITESPACE: { /* runs of non-whitespace; Whitespace: runs of \w and runs of [^\w\s] */
            uint32_t space = op->kind == ST_PT_WSSPLIT ? ST_C_WS : ST_C_SPACE;
            while (i < n) {
                uint32_t c = cls(s, i, &len, unsure);
                if (c & space) {
                    i += len;
                    continue;
                }
                size_t start = i;
                i += len;
                if (op->kind == ST_PT_WSSPLIT) {
                    while (i < n && !(cls(s, i, &len, unsure) & space)) i += len;
                } else {
                    uint32_t word = c & ST_C_WORD;
                    while (i < n) {
                        uint32_t d = cls(s, i, &len, unsure);
                        if ((d & ST_C_WORD) != word || (!word && (d & space))) break;
                        i += len;
                    }
                }
                if (st_pieces_push(out, (uint32_t)start, (uint32_t)(i - start), pc->origin && start == pc->off))
                    return ST_NOMEM;
            }
            break;
        }
        case ST_PT_CLASS:
        case ST_PT_CHAR: {
            beh_start(&b, out, op->behavior, pc);
            size_t gap = i;
            while (i < n) {
                int hit;
                if (op->kind == ST_PT_CLASS) {
                    hit = (cls(s, i, &len, unsure) & op->classes) != 0;
                } else {
                    if (s[i] < 0x80) len = 1;
                    else st_utf8_decode(s + i, &len);
                    hit = len == (size_t)op->chn && memcmp(s + i, op->chb, len) == 0;
                }
                if (hit) {
                    if (gap < i) beh_event(&b, (uint32_t)gap, (uint32_t)i, op->invert);
                    beh_event(&b, (uint32_t)i, (uint32_t)(i + len), !op->invert);
                    gap = i + len;
                    if (b.err) return ST_NOMEM;
                }
                i += len;
            }
            if (gap < n) beh_event(&b, (uint32_t)gap, (uint32_t)n, op->invert);
            beh_end(&b);
            break;
        }
        case ST_PT_STRING: {
            beh_start(&b, out, op->behavior, pc);
            size_t gap = i;
            while (i < n) {
                const char *hit = memmem(buf + i, n - i, op->str, op->str_len);
                if (!hit) break;
                size_t at = (size_t)(hit - buf);
                if (gap < at) beh_event(&b, (uint32_t)gap, (uint32_t)at, op->invert);
                beh_event(&b, (uint32_t)at, (uint32_t)(at + op->str_len), !op->invert);
                i = gap = at + op->str_len;
                if (b.err) return ST_NOMEM;
            }
            if (gap < n) beh_event(&b, (uint32_t)gap, (uint32_t)n, op->invert);
            beh_end(&b);
            break;
        }
        case ST_PT_GPT2:
        case ST_PT_CL100K:
        case ST_PT_BYTELEVEL: { /* the regex matches everything: every match an event, no gaps */
            int behavior = op->kind == ST_PT_BYTELEVEL ? ST_ISOLATED : op->behavior;
            int flag = op->kind == ST_PT_BYTELEVEL ? 1 : !op->invert;
            beh_start(&b, out, behavior, pc);
            while (i < n) {
                size_t e = op->kind == ST_PT_CL100K ? match_cl100k(s, i, n, op->num_max, unsure) : match_gpt2(s, i, n, unsure);
                beh_event(&b, (uint32_t)i, (uint32_t)e, flag);
                i = e;
                if (b.err) return ST_NOMEM;
            }
            beh_end(&b);
            break;
        }
        case ST_PT_METASPACE: /* split before every replacement (the pieces were rewritten already) */
            beh_start(&b, out, ST_MERGED_NEXT, pc);
            {
                size_t gap = i;
                while (i < n) {
                    if (s[i] < 0x80) len = 1;
                    else st_utf8_decode(s + i, &len);
                    if (len == (size_t)op->chn && memcmp(s + i, op->chb, len) == 0) {
                        if (gap < i) beh_event(&b, (uint32_t)gap, (uint32_t)i, 0);
                        beh_event(&b, (uint32_t)i, (uint32_t)(i + len), 1);
                        gap = i + len;
                        if (b.err) return ST_NOMEM;
                    }
                    i += len;
                }
                if (gap < n) beh_event(&b, (uint32_t)gap, (uint32_t)n, 0);
            }
            beh_end(&b);
            break;
        case ST_PT_RUNSPLIT: { /* cut where the character follows another character */
            size_t start = i;
            int prev_r = 1; /* no cut at the start */
            while (i < n) {
                if (s[i] < 0x80) len = 1;
                else st_utf8_decode(s + i, &len);
                int r = len == (size_t)op->chn && memcmp(s + i, op->chb, len) == 0;
                if (r && !prev_r && i > start) {
                    if (st_pieces_push(out, (uint32_t)start, (uint32_t)(i - start), pc->origin && start == pc->off))
                        return ST_NOMEM;
                    start = i;
                }
                prev_r = r;
                i += len;
            }
            if (n > start &&
                st_pieces_push(out, (uint32_t)start, (uint32_t)(n - start), pc->origin && start == pc->off))
                return ST_NOMEM;
            break;
        }
        }
        if (b.err) return ST_NOMEM;
    }
    return ST_OK;
}

/* Metaspace's rewrite of every piece into `dst`: spaces -> the replacement, the replacement prepended. */
static int metaspace_rewrite(const st_pt_op *op, const char *buf, const st_pieces *in, st_cbuf *dst, st_pieces *out) {
    size_t need = 0;
    for (size_t k = 0; k < in->len; k++) need += (size_t)in->data[k].len * (size_t)op->chn + (size_t)op->chn;
    dst->len = 0;
    if (st_cbuf_reserve(dst, need + 1)) return ST_NOMEM;
    for (size_t k = 0; k < in->len; k++) {
        const st_piece *pc = &in->data[k];
        const char *p = buf + pc->off;
        size_t start = dst->len;
        char *w = dst->data + dst->len;
        int starts = pc->len > 0 && (p[0] == ' ' || ((size_t)pc->len >= (size_t)op->chn && memcmp(p, op->chb, (size_t)op->chn) == 0));
        int prepend = !starts && (op->prepend == ST_PREPEND_ALWAYS || (op->prepend == ST_PREPEND_FIRST && pc->origin));
        if (prepend) {
            memcpy(w, op->chb, (size_t)op->chn);
            w += op->chn;
        }
        for (uint32_t i = 0; i < pc->len; i++) {
            if ((i & 0xFFFFF) == 0xFFFFF && out->intr && st_interrupt_poll(out->intr)) {
                out->stopped = 1;
                return ST_NOMEM;
            }
            if (p[i] == ' ') {
                memcpy(w, op->chb, (size_t)op->chn);
                w += op->chn;
            } else {
                *w++ = p[i];
            }
        }
        dst->len = (size_t)(w - dst->data);
        if (st_pieces_push(out, (uint32_t)start, (uint32_t)(dst->len - start), pc->origin)) return ST_NOMEM;
    }
    return ST_OK;
}

/* ByteLevel's prefix space before every piece that does not start with one, into `dst`. */
static int prefix_space(const char *buf, const st_pieces *in, st_cbuf *dst, st_pieces *out) {
    size_t need = 0;
    for (size_t k = 0; k < in->len; k++) need += (size_t)in->data[k].len + 1;
    dst->len = 0;
    if (st_cbuf_reserve(dst, need + 1)) return ST_NOMEM;
    for (size_t k = 0; k < in->len; k++) {
        const st_piece *pc = &in->data[k];
        size_t start = dst->len;
        if (pc->len == 0 || buf[pc->off] != ' ') dst->data[dst->len++] = ' ';
        memcpy(dst->data + dst->len, buf + pc->off, pc->len);
        dst->len += pc->len;
        if (st_pieces_push(out, (uint32_t)start, (uint32_t)(dst->len - start), pc->origin)) return ST_NOMEM;
    }
    return ST_OK;
}

static int bytelevel_pieces(const char *buf, const st_pieces *in, st_cbuf *dst, st_pieces *out) {
    dst->len = 0;
    for (size_t k = 0; k < in->len; k++) {
        const st_piece *pc = &in->data[k];
        size_t start = dst->len;
        if (st_bytelevel_map(buf + pc->off, pc->len, dst)) return ST_NOMEM;
        if (st_pieces_push(out, (uint32_t)start, (uint32_t)(dst->len - start), pc->origin)) return ST_NOMEM;
    }
    return ST_OK;
}

#define SWAP_PIECES()            \
    do {                         \
        st_pieces t_ = w->a;     \
        w->a = w->b;             \
        w->b = t_;               \
        w->b.len = 0;            \
    } while (0)

static int pretokenize(const st_pretok *p, const char *s, size_t n, int origin, st_pretok_work *w, const char **buf,
                       const st_pieces **out);

int st_pretokenize(const st_pretok *p, const char *s, size_t n, int origin, st_pretok_work *w, const char **buf,
                   const st_pieces **out) {
    w->a.intr = w->b.intr = w->intr;
    w->a.stopped = w->b.stopped = 0;
    int rc = pretokenize(p, s, n, origin, w, buf, out);
    if (rc == ST_NOMEM && (w->a.stopped || w->b.stopped)) return ST_STOP;
    return rc;
}

static int pretokenize(const st_pretok *p, const char *s, size_t n, int origin, st_pretok_work *w, const char **buf,
                       const st_pieces **out) {
    w->a.len = w->b.len = 0;
    if (n && st_pieces_push(&w->a, 0, (uint32_t)n, (uint32_t)origin)) return ST_NOMEM;
    const char *cur = s;
    int cur_buf = -1; /* -1: the input; 0 / 1: w->buf[...] */
    int unsure = 0;
    for (int k = 0; k < p->n_ops && w->a.len; k++) {
        const st_pt_op *op = &p->ops[k];
        int other = cur_buf == 0 ? 1 : 0;
        int rc;
        switch (op->kind) {
        case ST_PT_METASPACE:
            rc = metaspace_rewrite(op, cur, &w->a, &w->buf[other], &w->b);
            if (rc) return rc;
            SWAP_PIECES();
            cur = w->buf[other].data;
            cur_buf = other;
            if (op->split) {
                rc = split_pieces(op, cur, &w->a, &w->b, &unsure);
                if (rc) return rc;
                SWAP_PIECES();
            }
            break;
        case ST_PT_BYTELEVEL:
            if (op->prepend) {
                rc = prefix_space(cur, &w->a, &w->buf[other], &w->b);
                if (rc) return rc;
                SWAP_PIECES();
                cur = w->buf[other].data;
                cur_buf = other;
                other = 1 - other;
            }
            if (op->split) {
                rc = split_pieces(op, cur, &w->a, &w->b, &unsure);
                if (rc) return rc;
                SWAP_PIECES();
            }
            if (op->map) {
                rc = bytelevel_pieces(cur, &w->a, &w->buf[other], &w->b);
                if (rc) return rc;
                SWAP_PIECES();
                cur = w->buf[other].data;
                cur_buf = other;
            }
            break;
        default:
            rc = split_pieces(op, cur, &w->a, &w->b, &unsure);
            if (rc) return rc;
            SWAP_PIECES();
            break;
        }
        if (unsure) return ST_HF;
    }
    *buf = cur;
    *out = &w->a;
    return ST_OK;
}
