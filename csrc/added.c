/*
 * Added and special tokens inside text, as `tokenizers`' AddedVocabulary::find_matches cuts a text:
 *
 *   - leftmost-longest matches of the tokens' contents (a byte trie walked at every byte that starts a token;
 *     the same matches as the Aho-Corasick automaton with MatchKind::LeftmostLongest), non-overlapping, the
 *     scan resuming after each match, also after one that is then discarded;
 *   - single_word: a match with a word character (regex \w) right before or right after it is discarded;
 *   - lstrip: the match takes the whitespace (regex \s) before it, back to the end of the previous match;
 *   - rstrip: ... and the whitespace after it.
 *
 * The caller runs it twice: tokens with normalized=false on the raw text, then tokens with normalized=true
 * (by their normalised content) on each normalised piece between them.
 */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

void st_added_free(st_added *a) {
    for (int i = 0; i < a->n_tokens; i++) free(a->tokens[i].content);
    free(a->tokens);
    free(a->first_edge);
    free(a->edge_byte);
    free(a->edge_to);
    free(a->terminal);
    memset(a, 0, sizeof(*a));
}

static int token_cmp(const void *x, const void *y) {
    const st_added_token *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->content, b->content, n);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

typedef struct {
    int32_t state, lo, hi, depth;
} build_item;

int st_added_build(st_added *a, st_added_token *tokens, int n) {
    memset(a, 0, sizeof(*a));
    a->tokens = tokens;
    a->n_tokens = n;
    if (n == 0) return ST_OK;
    /* stable order for equal contents: the first given wins (duplicates cannot be built by `tokenizers`) */
    qsort(tokens, (size_t)n, sizeof(st_added_token), token_cmp);
    size_t total = 1;
    for (int i = 0; i < n; i++) total += tokens[i].len;
    if (total > INT32_MAX / 2) return ST_NOMEM;
    a->first_edge = calloc(total + 1, sizeof(int32_t));
    a->edge_byte = malloc(total);
    a->edge_to = malloc(total * sizeof(int32_t));
    a->terminal = malloc(total * sizeof(int32_t));
    build_item *queue = malloc(total * sizeof(build_item));
    if (!a->first_edge || !a->edge_byte || !a->edge_to || !a->terminal || !queue) {
        free(queue);
        return ST_NOMEM;
    }
    int32_t n_states = 1, n_edges = 0, head = 0, tail = 0;
    queue[tail++] = (build_item){0, 0, n, 0};
    while (head < tail) {
        build_item it = queue[head++];
        a->first_edge[it.state] = n_edges;
        a->terminal[it.state] = -1;
        int32_t i = it.lo;
        while (i < it.hi && tokens[i].len == (size_t)it.depth) { /* the token ending here (the first of equals) */
            if (a->terminal[it.state] < 0) a->terminal[it.state] = i;
            i++;
        }
        while (i < it.hi) {
            unsigned char b = (unsigned char)tokens[i].content[it.depth];
            int32_t j = i;
            while (j < it.hi && (unsigned char)tokens[j].content[it.depth] == b) j++;
            a->edge_byte[n_edges] = b;
            a->edge_to[n_edges] = n_states;
            n_edges++;
            queue[tail++] = (build_item){n_states, i, j, it.depth + 1};
            n_states++;
            i = j;
        }
    }
    a->first_edge[n_states] = n_edges;
    a->n_states = n_states;
    free(queue);
    for (int i = 0; i < n; i++)
        if (tokens[i].len) a->first[(unsigned char)tokens[i].content[0]] = 1;
    return ST_OK;
}

void st_segments_free(st_segments *s) {
    free(s->data);
    memset(s, 0, sizeof(*s));
}

static int seg_push(st_segments *s, size_t start, size_t end, int32_t id) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        st_segment *d = realloc(s->data, cap * sizeof(st_segment));
        if (!d) return -1;
        s->data = d;
        s->cap = cap;
    }
    s->data[s->len++] = (st_segment){(uint32_t)start, (uint32_t)end, id};
    return 0;
}

/* The longest token starting at s[i]: its index and end, or -1. */
static int longest_at(const st_added *a, const unsigned char *s, size_t i, size_t n, size_t *end) {
    int32_t state = 0;
    int found = -1;
    for (size_t j = i; j < n; j++) {
        int32_t lo = a->first_edge[state], hi = a->first_edge[state + 1];
        int32_t next = -1;
        unsigned char b = s[j];
        for (int32_t e = lo; e < hi; e++) { /* sorted: stop early */
            if (a->edge_byte[e] == b) {
                next = a->edge_to[e];
                break;
            }
            if (a->edge_byte[e] > b) break;
        }
        if (next < 0) break;
        state = next;
        if (a->terminal[state] >= 0) {
            found = a->terminal[state];
            *end = j + 1;
        }
    }
    return found;
}

/* Classes of the character ending at s[i] (i > 0). */
static uint32_t classes_before(const unsigned char *s, size_t i) {
    size_t k = i - 1;
    while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
    size_t len;
    return st_classes_at(s, k, &len);
}

int st_added_split(const st_added *a, const char *text, size_t n, st_segments *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t before = out->len;
    size_t start_offset = 0;
    if (a->n_tokens) {
        for (size_t i = 0; i < n;) {
            if (!a->first[s[i]]) {
                i++;
                continue;
            }
            size_t stop = i;
            int t = longest_at(a, s, i, n, &stop);
            if (t < 0) {
                i++;
                continue;
            }
            const st_added_token *tok = &a->tokens[t];
            size_t start = i;
            i = stop; /* the scan resumes after the match, also when it is discarded */
            if (tok->single_word) {
                if (start > 0) {
                    uint32_t c = classes_before(s, start);
                    if ((c >> ST_C_UNSURE_SHIFT) & ST_C_WORD) return -2;
                    if (c & ST_C_WORD) continue;
                }
                if (stop < n) {
                    size_t len;
                    uint32_t c = st_classes_at(s, stop, &len);
                    if ((c >> ST_C_UNSURE_SHIFT) & ST_C_WORD) return -2;
                    if (c & ST_C_WORD) continue;
                }
            }
            if (tok->lstrip) { /* regex \s*$ on s[..start]: back over whitespace, not into the previous match */
                size_t k = start;
                while (k > start_offset) {
                    uint32_t c = classes_before(s, k);
                    if ((c >> ST_C_UNSURE_SHIFT) & ST_C_SPACE) return -2;
                    if (!(c & ST_C_SPACE)) break;
                    size_t p = k - 1;
                    while (p > 0 && (s[p] & 0xC0) == 0x80) p--;
                    k = p;
                }
                /* \s*$ finds the leftmost start of the trailing run; a run crossing start_offset is cut there */
                start = k;
            }
            if (tok->rstrip) {
                while (stop < n) {
                    size_t len;
                    uint32_t c = st_classes_at(s, stop, &len);
                    if ((c >> ST_C_UNSURE_SHIFT) & ST_C_SPACE) return -2;
                    if (!(c & ST_C_SPACE)) break;
                    stop += len;
                }
                /* the scan still resumes at the match's own end, as the automaton's iterator does */
            }
            if (start_offset < start && seg_push(out, start_offset, start, -1)) return -1;
            if (seg_push(out, start, stop, tok->id)) return -1;
            start_offset = stop;
        }
    }
    if (start_offset < n && seg_push(out, start_offset, n, -1)) return -1;
    return (int)(out->len - before);
}
