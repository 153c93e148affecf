/*
 * The growable id and byte buffers (st_ibuf, st_cbuf, declared in kernel.h), shared by the models, the
 * normalisers and the pipeline: in a file of their own so that those parts depend on it, not on tokenize.c.
 * A buffer may start on borrowed memory (a caller's stack array): the first growth copies it to the heap.
 */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

static void *grow(void *data, size_t len, size_t cap, size_t item, int *borrowed) {
    if (!*borrowed) return realloc(data, cap * item);
    void *fresh = malloc(cap * item);
    if (fresh && len) memcpy(fresh, data, len * item);
    if (fresh) *borrowed = 0;
    return fresh;
}

int st_ibuf_reserve(st_ibuf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    int32_t *data = grow(b->data, b->len, cap, sizeof(int32_t), &b->borrowed);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int st_cbuf_reserve(st_cbuf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    char *data = grow(b->data, b->len, cap, 1, &b->borrowed);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

void st_ibuf_free(st_ibuf *b) {
    if (!b->borrowed) free(b->data);
    memset(b, 0, sizeof(*b));
}

void st_cbuf_free(st_cbuf *b) {
    if (!b->borrowed) free(b->data);
    memset(b, 0, sizeof(*b));
}
