/*  fdlimit.c - the file descriptor limit: raised at start, watched while running  */
#include "common/fdlimit.h"
#include "common/log.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define JR_FD_WARN_PERCENT 80  //  of the soft limit

//  A hard limit of "unlimited" cannot be the soft one: the kernel caps open
//  files at fs.nr_open.
static rlim_t
s_ceiling (rlim_t hard)
{
    if (hard != RLIM_INFINITY)
        return hard;
    unsigned long nr_open = 1048576;  //  the kernel's default
    FILE *file = fopen ("/proc/sys/fs/nr_open", "r");
    if (file) {
        if (fscanf (file, "%lu", &nr_open) != 1)
            nr_open = 1048576;
        fclose (file);
    }
    return (rlim_t)nr_open;
}

long
jr_fd_limit_raise (void)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim)) {
        jr_warn ("error=%s: cannot read the file descriptor limit", strerror (errno));
        return -1;
    }
    rlim_t was = lim.rlim_cur;
    rlim_t want = s_ceiling (lim.rlim_max);
    if (lim.rlim_cur < want) {
        lim.rlim_cur = want;
        if (setrlimit (RLIMIT_NOFILE, &lim)) {
            jr_warn ("soft=%llu want=%llu error=%s: cannot raise the file descriptor limit",
                     (unsigned long long)was, (unsigned long long)want, strerror (errno));
            lim.rlim_cur = was;
        }
    }
    jr_info ("soft=%llu hard=%llu was=%llu: file descriptor limit",
             (unsigned long long)lim.rlim_cur, (unsigned long long)lim.rlim_max,
             (unsigned long long)was);
    return (long)lim.rlim_cur;
}

bool
jr_fd_limit_check (void)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim) || lim.rlim_cur == RLIM_INFINITY)
        return false;
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir) {
        if (errno == EMFILE)
            jr_warn ("soft=%llu: at the file descriptor limit, new connections fail",
                     (unsigned long long)lim.rlim_cur);
        return errno == EMFILE;
    }
    unsigned long long used = 0;
    while (readdir (dir))
        used++;
    closedir (dir);
    used = used > 3 ? used - 3 : 0;  //  ".", ".." and the directory's own
    bool near = used * 100 > (unsigned long long)lim.rlim_cur * JR_FD_WARN_PERCENT;
    if (near)
        jr_warn ("fds=%llu soft=%llu: near the file descriptor limit, new connections will fail",
                 used, (unsigned long long)lim.rlim_cur);
    return near;
}
