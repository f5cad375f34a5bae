/*
 * Arena: a chain of blocks handed out by bumping a pointer; everything is freed
 * at once. Graph metadata (nodes, names, attributes) lives in one arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} block;

struct hone_arena {
    block *head;
};

hone_arena *hone_arena_new(void)
{
    hone_arena *a = calloc(1, sizeof *a);
    HONE_ASSERT(a);
    return a;
}

void hone_arena_free(hone_arena *a)
{
    if (!a)
        return;
    for (block *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(a);
}

/* Zeroed, 16-byte aligned memory; aborts on exhaustion (metadata is small). */
void *hone_arena_alloc(hone_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        HONE_ASSERT(b);
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *hone_arena_strndup(hone_arena *a, const char *s, size_t n)
{
    char *d = hone_arena_alloc(a, n + 1);
    if (n)
        memcpy(d, s, n); /* s may be NULL when n is 0 (empty protobuf bytes) */
    d[n] = 0;
    return d;
}

char *hone_arena_strdup(hone_arena *a, const char *s)
{
    return s ? hone_arena_strndup(a, s, strlen(s)) : NULL;
}

char *hone_arena_printf(hone_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = hone_arena_alloc(a, (size_t)n + 1);
    vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}
