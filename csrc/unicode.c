/*
 * Code point properties and mappings as Hugging Face `tokenizers` sees them: the generated tables
 * (unicode_data.h, from tools/gen_unicode.py) behind small accessors. Each property bit and flag bit is
 * documented in unicode_data.h; unicode.h declares the mappings the normalisers use.
 */
#define ST_UNICODE_TABLES /* this translation unit holds the tables */
#include "unicode.h"

uint32_t st_uni_props(uint32_t cp) { return cp < 0x110000 ? st_uni_rec_of(cp)->props : 0; }

uint32_t st_uni_flags(uint32_t cp) { return cp < 0x110000 ? st_uni_rec_of(cp)->flags : 0; }

uint32_t st_uni_gcb(uint32_t cp) { return cp < 0x110000 ? st_uni_rec_of(cp)->gcb : ST_GCB_OTHER; }

int st_uni_lower(uint32_t cp, uint32_t out[3]) {
    const st_uni_rec *r = st_uni_rec_of(cp);
    if (!(r->props & ST_UP_LOWER)) {
        out[0] = cp;
        return 1;
    }
    if (r->props & ST_UP_LOWER_MULTI) {
        for (int i = 0; i < ST_UNI_N_LOWER_MULTI; i++) {
            const uint32_t *e = &st_uni_lower_multi[4 * i];
            if (e[0] == cp) {
                int n = 0;
                while (n < 3 && e[1 + n]) {
                    out[n] = e[1 + n];
                    n++;
                }
                return n;
            }
        }
    }
    out[0] = (uint32_t)((int32_t)cp + r->lower);
    return 1;
}

/* UTF-16 units -> code points */
static int utf16_to_cps(const uint16_t *u, int n, uint32_t *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
            c = 0x10000 + ((c - 0xD800) << 10) + (u[i + 1] - 0xDC00);
            i++;
        }
        out[k++] = c;
    }
    return k;
}

int st_uni_decompose(uint32_t cp, int compat, uint32_t *out) {
    uint32_t s = cp - ST_HANGUL_S_BASE;
    if (s < ST_HANGUL_S_COUNT) {
        out[0] = ST_HANGUL_L_BASE + s / ST_HANGUL_N_COUNT;
        out[1] = ST_HANGUL_V_BASE + (s % ST_HANGUL_N_COUNT) / ST_HANGUL_T_COUNT;
        uint32_t t = s % ST_HANGUL_T_COUNT;
        if (!t) return 2;
        out[2] = ST_HANGUL_T_BASE + t;
        return 3;
    }
    uint32_t i = st_uni_dec_of(cp);
    if (!i) return 0;
    uint32_t head = st_uni_dec[i];
    int nc = (int)(head & 0xFF), nk = (int)(head >> 8);
    if (compat && nk) return utf16_to_cps(&st_uni_dec[i + 1 + nc], nk, out);
    if (!nc) return 0; /* compatibility only, asked for the canonical one */
    return utf16_to_cps(&st_uni_dec[i + 1], nc, out);
}

uint32_t st_uni_compose(uint32_t a, uint32_t b) {
    /* Hangul: L + V -> LV, LV + T -> LVT */
    if (a - ST_HANGUL_L_BASE < ST_HANGUL_L_COUNT && b - ST_HANGUL_V_BASE < ST_HANGUL_V_COUNT)
        return ST_HANGUL_S_BASE + ((a - ST_HANGUL_L_BASE) * ST_HANGUL_V_COUNT + (b - ST_HANGUL_V_BASE)) * ST_HANGUL_T_COUNT;
    if (a - ST_HANGUL_S_BASE < ST_HANGUL_S_COUNT && (a - ST_HANGUL_S_BASE) % ST_HANGUL_T_COUNT == 0 &&
        b - (ST_HANGUL_T_BASE + 1) < ST_HANGUL_T_COUNT - 1)
        return a + (b - ST_HANGUL_T_BASE);
    size_t lo = 0, hi = ST_UNI_N_PAIRS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t f = st_uni_pair_first[mid], s = st_uni_pair_second[mid];
        if (f < a || (f == a && s < b))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ST_UNI_N_PAIRS && st_uni_pair_first[lo] == a && st_uni_pair_second[lo] == b) return st_uni_pair_composite[lo];
    return 0;
}
