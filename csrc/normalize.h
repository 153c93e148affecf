/*
 * Building normaliser programs (normalize.c) from plain step descriptions (normalizer_type.c fills them from
 * the Python spec that staticst/tokenization/native_normalizer.py compiles out of `tokenizer.json`).
 */
#ifndef STATICST_NORMALIZE_H
#define STATICST_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef enum {
    ST_NS_BERT_CLEAN,     /* BertNormalizer clean_text */
    ST_NS_BERT_CJK,       /* BertNormalizer handle_chinese_chars */
    ST_NS_BERT_STRIP,     /* BertNormalizer strip_accents: NFD, then nonspacing marks removed */
    ST_NS_LOWERCASE,      /* Lowercase, BertNormalizer lowercase */
    ST_NS_NFD,
    ST_NS_NFKD,
    ST_NS_NFC,
    ST_NS_NFKC,
    ST_NS_STRIP_ACCENTS,  /* StripAccents: combining marks removed */
    ST_NS_NMT,            /* Nmt */
    ST_NS_BYTELEVEL,      /* ByteLevel normaliser */
    ST_NS_STRIP,          /* Strip: a = left, b = right */
    ST_NS_REPLACE,        /* Replace: every non-overlapping occurrence of s1 (non-empty) -> s2 */
    ST_NS_REPLACE_RUN,    /* Replace with the regex `c{a,}`: each run of >= a code points c (= cp) -> s2 */
    ST_NS_PREPEND,        /* Prepend s1 when the text is not empty */
    ST_NS_PRECOMPILED,    /* Precompiled: s1[0:n1] is the sentencepiece charsmap */
} st_norm_step_kind;

typedef struct {
    st_norm_step_kind kind;
    int a, b;
    uint32_t cp;
    const char *s1, *s2; /* UTF-8 (the charsmap: bytes); copied by st_normalizer_build */
    size_t n1, n2;
} st_norm_step;

/* A program of steps; NULL with a message in err on a malformed step (e.g. a charsmap that does not parse)
 * or on out of memory (err: "out of memory"). */
st_normalizer *st_normalizer_build(const st_norm_step *steps, int n, char *err, size_t errlen);
void st_normalizer_free(st_normalizer *n);
/* A one-line description of the compiled program (stages, fast paths) for tests and `info`. */
void st_normalizer_describe(const st_normalizer *n, char *buf, size_t len);

#endif
