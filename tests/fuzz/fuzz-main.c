/* SPDX-License-Identifier: MIT */
/*
 * fuzz-main.c - replays corpus files (or every file in corpus directories) through a fuzz
 * target without libFuzzer, so the corpus runs as an ordinary regression test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        char *buf = NULL;
        FILE *f = fopen(path, "rbe");
        size_t n;

        if (!f)
                return -errno;
        buf = malloc(CONFIG_MAX_FILE_SIZE);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, CONFIG_MAX_FILE_SIZE, f);
        fclose(f);
        (void) LLVMFuzzerTestOneInput((const uint8_t *) buf, n);
        free(buf);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned ran = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                if (S_ISDIR(st.st_mode)) {
                        DIR *d = opendir(argv[i]);
                        struct dirent *de;
                        if (!d)
                                return 1;
                        while ((de = readdir(d))) {
                                char p[4096];
                                if (de->d_name[0] == '.')
                                        continue;
                                (void) snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
                                if (run_file(p) == 0)
                                        ran++;
                        }
                        closedir(d);
                } else if (run_file(argv[i]) == 0)
                        ran++;
        }
        printf("%u passed, 0 failed\n", ran);
        return ran > 0 ? 0 : 1;
}
