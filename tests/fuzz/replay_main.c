/*
 * Replays files through a fuzz harness without libFuzzer, so the normal test
 * suite (and its sanitizer build) re-runs every input that ever crashed hone.
 * usage: fuzz_replay_X FILE_OR_DIR...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    hone_ctx ctx;
    hone_ctx_init(&ctx);
    uint8_t *buf;
    size_t len;
    if (hone_read_file(&ctx, path, &buf, &len)) {
        fprintf(stderr, "replay: %s\n", ctx.msg);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int replay(const char *path, int *count)
{
    struct stat sb;
    if (stat(path, &sb))
        return fprintf(stderr, "replay: cannot stat %s\n", path), 1;
    if (!S_ISDIR(sb.st_mode))
        return (*count)++, replay_file(path);
    DIR *d = opendir(path);
    int bad = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        bad |= replay(sub, count);
    }
    if (d)
        closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++)
        bad |= replay(argv[i], &count);
    printf("replayed %d inputs\n", count);
    return bad;
}
