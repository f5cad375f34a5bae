/*
 * Context: error reporting and resource limits. Library code never prints or
 * exits; it records one message here and returns a status code. Bugs go
 * through HONE_ASSERT, which aborts with file and line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static const char *status_names[HONE_STATUS_COUNT] = {
    "ok", "io error", "parse error", "invalid model", "unsupported",
    "shape error", "limit exceeded", "out of memory", "bad argument", "internal error",
};

const char *hone_status_name(hone_status s)
{
    return (unsigned)s < HONE_STATUS_COUNT ? status_names[s] : "unknown status";
}

const char *hone_version_string(void)
{
    return "0.1.0";
}

_Noreturn void hone_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "hone: internal error: assertion '%s' failed at %s:%d\n", what, file, line);
    abort();
}

/* Process-wide defaults every new context starts from (set once at start-up,
 * e.g. from the command line's --max-* flags). */
static hone_limits default_limits = {
    .max_dim = (int64_t)1 << 40,
    .max_numel = (int64_t)1 << 40,
    .max_bytes = (int64_t)1 << 42,
    .max_nodes = 1000000,
    .max_depth = 100000,
    .max_memory = 0,
};

void hone_limits_get_defaults(hone_limits *l)
{
    *l = default_limits;
}

void hone_limits_set_defaults(const hone_limits *l)
{
    default_limits = *l;
}

void hone_ctx_init(hone_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->limits = default_limits;
}

void hone_ctx_clear(hone_ctx *ctx)
{
    ctx->status = HONE_OK;
    ctx->msg[0] = 0;
}

hone_status hone_vfail(hone_ctx *ctx, hone_status st, const char *fmt, va_list ap)
{
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    ctx->status = st;
    return st;
}

hone_status hone_fail(hone_ctx *ctx, hone_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hone_vfail(ctx, st, fmt, ap);
    va_end(ap);
    return st;
}

hone_status hone_fail_wrap(hone_ctx *ctx, const char *fmt, ...)
{
    char prefix[512], old[sizeof ctx->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, ctx->msg, sizeof old);
    size_t k = strlen(prefix), room = sizeof ctx->msg - 1;
    if (k > room - 2)
        k = room - 2;
    memcpy(ctx->msg, prefix, k);
    memcpy(ctx->msg + k, ": ", 2);
    size_t m = strnlen(old, room - k - 2);
    memcpy(ctx->msg + k + 2, old, m);
    ctx->msg[k + 2 + m] = 0;
    return ctx->status;
}
