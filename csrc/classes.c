/*
 * The character classes of the pre-tokenizers and added tokens (pipeline.h, ST_C_*), from the generated
 * Unicode tables (unicode_data.h, tools/gen_unicode.py): each class is one property bit of st_uni_props, and
 * its "unsure" bit (<< ST_C_UNSURE_SHIFT) is the flag st_uni_flags sets where the installed `tokenizers` was
 * seen to disagree with the tables on that property (the text then takes the exact slow path).
 */
#include "pipeline.h"
#include "unicode.h"

uint16_t st_ascii_classes[128];

static const struct {
    uint32_t cls, prop, flag;
} map[] = {
    {ST_C_WS, ST_UP_WHITESPACE, ST_UF_WHITESPACE}, {ST_C_PUNCT, ST_UP_PUNCT, ST_UF_PUNCT},
    {ST_C_NUM, ST_UP_NUMERIC, ST_UF_NUMERIC},      {ST_C_WORD, ST_UP_RE_WORD, ST_UF_RE_WORD},
    {ST_C_SPACE, ST_UP_RE_SPACE, ST_UF_RE_SPACE},  {ST_C_L, ST_UP_ONIG_LETTER, ST_UF_ONIG_LETTER},
    {ST_C_N, ST_UP_ONIG_NUMBER, ST_UF_ONIG_NUMBER}, {ST_C_OSPACE, ST_UP_ONIG_SPACE, ST_UF_ONIG_SPACE},
};

uint32_t st_char_classes(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    const st_uni_rec *r = st_uni_rec_of(cp);
    uint32_t c = 0;
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
        if (r->props & map[k].prop) c |= map[k].cls;
        if (r->flags & map[k].flag) c |= map[k].cls << ST_C_UNSURE_SHIFT;
    }
    return c;
}

void st_classes_init(void) {
    /* idempotent: racing callers write the same values (only Pipeline construction calls it, GIL held) */
    for (uint32_t c = 0; c < 128; c++) st_ascii_classes[c] = (uint16_t)st_char_classes(c);
}
