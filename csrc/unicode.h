/*
 * Code point mappings behind the normalisers (unicode.c), over the generated tables in unicode_data.h
 * (property bits ST_UP_*, flag bits ST_UF_*, grapheme classes ST_GCB_*, each documented there).
 * st_uni_props / st_uni_flags / st_uni_gcb are declared in tokenizer.h for the other parts.
 */
#ifndef STATICST_UNICODE_H
#define STATICST_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "unicode_data.h"

uint32_t st_uni_props(uint32_t cp);
uint32_t st_uni_flags(uint32_t cp);
uint32_t st_uni_gcb(uint32_t cp);

/* The longest full decomposition (compatibility, U+FDFA) is 18 code points. */
#define ST_UNI_MAX_DECOMP 18

/* char::to_lowercase(cp) into out (1..3 code points); returns the count. */
int st_uni_lower(uint32_t cp, uint32_t out[3]);
/* The full canonical (compat = 0) or compatibility (compat = 1) decomposition of cp into out (at least
 * ST_UNI_MAX_DECOMP slots), in the order the recursive expansion gives (not yet canonically ordered);
 * Hangul syllables by arithmetic. Returns the count, 0 when cp does not decompose. */
int st_uni_decompose(uint32_t cp, int compat, uint32_t *out);
/* The primary composite of the pair (a, b), Hangul included; 0 when there is none. */
uint32_t st_uni_compose(uint32_t a, uint32_t b);

#endif
