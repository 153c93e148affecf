/*
 * The native tokenizer's pipeline (issue 18): pre-tokenizers (pretok.c), added tokens inside text (added.c) and
 * one text through normaliser -> added tokens -> pre-tokenizer -> word table / model (tokenize.c), as the
 * Hugging Face `tokenizers` pipeline does it (`encode(text, add_special_tokens=False)`), exactly.
 *
 * staticst/tokenization/native.py compiles a `tokenizers.Tokenizer` into a `_kernel.Pipeline` (pipeline.c) or
 * refuses with the reason naming the component; the kernel runs it with the GIL released.
 *
 * Every object here is immutable once built and shared by all threads; per-thread state is in st_pipe_scratch.
 */
#ifndef STATICST_PIPELINE_H
#define STATICST_PIPELINE_H

#include "tokenizer.h"

/* ------------------------------------------------------------------ character classes of the pre-tokenizers */

/* One bit per class a pre-tokenizer or an added token's rule asks about, as `tokenizers` decides it. */
#define ST_C_WS 0x01u     /* Rust char::is_whitespace: BertPreTokenizer, WhitespaceSplit */
#define ST_C_PUNCT 0x02u  /* ASCII punctuation or Unicode P* (unicode_categories): BertPreTokenizer, Punctuation */
#define ST_C_NUM 0x04u    /* Rust char::is_numeric (Nd, Nl, No): Digits */
#define ST_C_WORD 0x08u   /* regex crate \w: Whitespace, added tokens' single_word */
#define ST_C_SPACE 0x10u  /* regex crate \s: Whitespace, added tokens' lstrip / rstrip */
#define ST_C_L 0x20u      /* Oniguruma \p{L}: the ByteLevel and Split regexes */
#define ST_C_N 0x40u      /* Oniguruma \p{N} */
#define ST_C_OSPACE 0x80u /* Oniguruma \s */
/* Bits 8..15: the class of the same bit << 8 is not proven to agree with `tokenizers` for this code point:
 * a pre-tokenizer or an added token's rule that asks about it sends the text down the exact slow path. */
#define ST_C_UNSURE_SHIFT 8

/* The classes of a code point (classes.c, from st_uni_props / st_uni_flags); st_classes_init fills the
 * tables once (a Pipeline's construction calls it). */
void st_classes_init(void);
uint32_t st_char_classes(uint32_t cp);
extern uint16_t st_ascii_classes[128];

/* The classes of the character at s[i] (valid UTF-8), its byte length in *n. */
static inline uint32_t st_classes_at(const unsigned char *s, size_t i, size_t *n) {
    if (s[i] < 0x80) {
        *n = 1;
        return st_ascii_classes[s[i]];
    }
    return st_char_classes(st_utf8_decode(s + i, n));
}

/* ------------------------------------------------------------------ pre-tokenizers (pretok.c) */

enum st_behavior { ST_REMOVED = 0, ST_ISOLATED = 1, ST_MERGED_PREV = 2, ST_MERGED_NEXT = 3, ST_CONTIGUOUS = 4 };

enum st_pt_kind {
    ST_PT_BERT = 0,       /* BertPreTokenizer: whitespace removed, punctuation isolated */
    ST_PT_WHITESPACE,     /* Whitespace: the matches of \w+|[^\w\s]+ */
    ST_PT_WSSPLIT,        /* WhitespaceSplit */
    ST_PT_CLASS,          /* a split at every character of `classes` (Punctuation, Digits) */
    ST_PT_CHAR,           /* a split at one character (CharDelimiterSplit, Split of a one-character string) */
    ST_PT_STRING,         /* Split at a literal string */
    ST_PT_GPT2,           /* Split at the GPT-2 regex (also ByteLevel's own split) */
    ST_PT_CL100K,         /* Split at the cl100k / Llama-3 / Qwen2 regex (num_max: \p{N}{1,num_max}) */
    ST_PT_METASPACE,      /* Metaspace: spaces -> replacement, prepend, split before each replacement */
    ST_PT_BYTELEVEL,      /* ByteLevel: a prefix space, the GPT-2 split, bytes -> characters */
    ST_PT_RUNSPLIT,       /* no pre-tokenizer, BPE proven not to merge across: split where `ch` follows another character */
};

enum st_prepend { ST_PREPEND_ALWAYS = 0, ST_PREPEND_FIRST = 1, ST_PREPEND_NEVER = 2 };

typedef struct {
    int kind;
    int behavior;       /* enum st_behavior (CLASS, CHAR, STRING, GPT2, CL100K) */
    int invert;         /* Split's invert */
    uint32_t classes;   /* CLASS: the class bits that split */
    uint32_t ch;        /* CHAR / METASPACE replacement / RUNSPLIT: the code point */
    char chb[4];        /* ... its UTF-8 bytes */
    int chn;
    int prepend;        /* METASPACE: enum st_prepend; BYTELEVEL: add_prefix_space */
    int split;          /* METASPACE: split; BYTELEVEL: use_regex */
    int map;            /* BYTELEVEL: map bytes to characters here (0: deferred to the model's input) */
    int num_max;        /* CL100K: at most this many \p{N} per match (0: unbounded) */
    char *str;          /* STRING: the pattern */
    size_t str_len;
} st_pt_op;

#define ST_MAX_PT_OPS 16

typedef struct {
    int n_ops;
    st_pt_op ops[ST_MAX_PT_OPS];
} st_pretok;

/* A piece of text: bytes [off, off + len) of a buffer; origin: it starts at the original text's offset 0
 * (Metaspace's prepend_scheme "first" prepends only there). */
typedef struct {
    uint32_t off, len;
    uint32_t origin;
} st_piece;

typedef struct {
    st_piece *data;
    size_t len, cap;
    st_interrupt *intr;  /* or NULL: every 64K pieces pushed, a long call looks for Ctrl-C */
    uint32_t ticks;
    int stopped;         /* ... and was told to stop (the push failed) */
} st_pieces;

typedef struct {
    st_pieces a, b;      /* the pieces before and after one operation */
    st_cbuf buf[2];      /* the text of transformed pieces */
    st_interrupt *intr;  /* or NULL: polled every 64K pieces (a huge text answers Ctrl-C) */
} st_pretok_work;

/* 0, or -1: out of memory, or p->stopped (Ctrl-C). */
int st_pieces_push(st_pieces *p, uint32_t off, uint32_t len, uint32_t origin);
void st_pretok_work_free(st_pretok_work *w);
void st_pretok_free(st_pretok *p);
/* Pre-tokenize s[0:n] (normalised, valid UTF-8). On ST_OK *buf and *out hold the pre-tokens (offsets into
 * *buf); ST_HF: a character whose class is not proven (the slow path); ST_NOMEM; ST_STOP (w->intr). */
int st_pretokenize(const st_pretok *p, const char *s, size_t n, int origin, st_pretok_work *w, const char **buf,
                   const st_pieces **out);
/* ByteLevel's byte -> character table, filled once (a Pipeline's construction calls it, GIL held). */
void st_bytelevel_init(void);
/* ByteLevel's byte -> character mapping of s[0:n], appended to out (UTF-8). */
int st_bytelevel_map(const char *s, size_t n, st_cbuf *out);

/* ------------------------------------------------------------------ added tokens (added.c) */

typedef struct {
    char *content;       /* what is matched: the content, or for a normalized token its normalised form */
    size_t len;
    int32_t id;
    uint8_t single_word, lstrip, rstrip;
} st_added_token;

/* A byte trie over the tokens (leftmost-longest, as `tokenizers`' Aho-Corasick with MatchKind::LeftmostLongest):
 * state s has children edge_byte/edge_to[first_edge[s] .. first_edge[s + 1]) sorted by byte. */
typedef struct {
    int n_tokens;
    st_added_token *tokens;
    int n_states;
    int32_t *first_edge;  /* n_states + 1 */
    uint8_t *edge_byte;
    int32_t *edge_to;
    int32_t *terminal;    /* state -> token index, or -1 (state 0 is the root) */
    uint8_t first[256];   /* a byte that starts a token */
} st_added;

int st_added_build(st_added *a, st_added_token *tokens, int n); /* takes ownership of tokens; ST_OK / ST_NOMEM */
void st_added_free(st_added *a);

/* One segment of a text cut at added tokens: [start, end) of the input, and the token id (or -1: text). */
typedef struct {
    uint32_t start, end;
    int32_t id;
} st_segment;

typedef struct {
    st_segment *data;
    size_t len, cap;
} st_segments;

/* Cut s[0:n] at the added tokens (lstrip / rstrip / single_word as `tokenizers` applies them); appends the
 * segments, empty text segments left out. Returns the number appended, or -1 on out of memory, -2 when a
 * character next to a token has a class not proven (the slow path). */
int st_added_split(const st_added *a, const char *s, size_t n, st_segments *out);
void st_segments_free(st_segments *s);

/* ------------------------------------------------------------------ the pipeline (pipeline.c, tokenize.c) */

typedef struct {
    const st_model *model;
    const st_normalizer *normalizer;  /* or NULL */
    st_pretok pretok;
    int has_pretok;
    int key_bytelevel;                /* a word's key is its text before ByteLevel's byte mapping */
    st_added raw, norm;               /* added tokens matched in the raw text / in each normalised piece */
    int first_check;                  /* Metaspace "first": a piece whose first character normalises to nothing
                                         is not at offset 0 any more (then the text takes the slow path) */
    /* the normaliser on ASCII text, read from the tokenizer itself (char-local, verified): */
    int ascii_table;
    uint8_t norm_len[128];
    char norm_out[128][8];
    char ascii_prefix[8];             /* Prepend before non-empty text (Prepend normaliser) */
    int ascii_prefix_len;
    uint8_t ascii_odd[128];           /* first bytes of pairs the table does not map character by character */
    int n_odd;
    char odd[16][2];
} st_pipe;

/* Per-thread scratch of the pipeline. */
typedef struct {
    st_cbuf norm, keymap;
    st_segments raw_segs, norm_segs;
    st_pretok_work pw;
    st_model_scratch *model;
    st_ibuf word_ids;
    st_gen *fresh;                    /* words this thread tokenized with the model (inserted into the table later) */
    st_interrupt *intr;               /* or NULL: polled every few thousand words (Ctrl-C during a long call) */
    uint32_t since_poll;
    int64_t id_limit;                 /* ids must be below this (the table's rows): ST_BADID otherwise */
    int32_t bad_id;                   /* ... the first one that was not */
} st_pipe_scratch;

/* st_pipe_text: a token id outside the table (the tokenizer and the table belong to different models). */
#define ST_BADID 6

void st_pipe_scratch_free(st_pipe_scratch *s);
/* Tokenize one text (UTF-8 or ASCII) into ids appended to out (token rules NOT applied). Words come from
 * `gen` (the shared table, read only; may be NULL), then from s->fresh, then from the model (then added to
 * s->fresh). Returns ST_OK, ST_HF (the slow path), ST_NOMEM or ST_STOP (s->intr says stop); on anything but
 * ST_OK out is as before. */
int st_pipe_text(const st_pipe *pp, const st_gen *gen, const char *text, size_t len, int is_ascii, st_ibuf *out,
                 st_pipe_scratch *s);
/* Insert a word into an overlay that grows (a new generation when full); 0 or -1 on out of memory. */
int st_overlay_put(st_gen **g, const st_key *k, const int32_t *ids, size_t n);

#endif
