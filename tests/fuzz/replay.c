/*  replay.c - runs a fuzz target over every file of a corpus, without libFuzzer  */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Feeds one file; the buffer is its exact size so sanitizers see overreads.
static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    struct stat st;
    if (fstat (fileno (file), &st) != 0 || st.st_size < 0) {
        fclose (file);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc (size ? size : 1);
    if (!data || fread (data, 1, size, file) != size) {
        fprintf (stderr, "replay: cannot read %s\n", path);
        free (data);
        fclose (file);
        return -1;
    }
    fclose (file);
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

//  Replays a file, or every regular file of a directory; returns the count
//  replayed or -1.
static int
s_replay (const char *path)
{
    struct stat st;
    if (stat (path, &st) != 0) {
        fprintf (stderr, "replay: no such file or directory: %s\n", path);
        return -1;
    }
    if (!S_ISDIR (st.st_mode))
        return s_replay_file (path) == 0 ? 1 : -1;
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char file[4096];
        snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
        if (stat (file, &st) != 0 || !S_ISREG (st.st_mode))
            continue;
        if (s_replay_file (file) != 0) {
            closedir (dir);
            return -1;
        }
        count++;
    }
    closedir (dir);
    return count;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s CORPUS-DIR-OR-FILE...\n", argv[0]);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int count = s_replay (argv[i]);
        if (count < 0)
            return 1;
        total += count;
    }
    //  An empty corpus would pass in silence: refuse it.
    if (total == 0) {
        fprintf (stderr, "replay: no inputs found\n");
        return 1;
    }
    printf ("replay: %d inputs, no crash\n", total);
    return 0;
}
