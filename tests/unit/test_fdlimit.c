/*  test_fdlimit.c - the file descriptor limit: raised to the hard one, a warning near it  */
#include "common/fdlimit.h"
#include "common/log.h"
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

//  Criterion runs each test in its own process: limits changed here die with it.
static void
s_soft (rlim_t soft)
{
    struct rlimit lim;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &lim), 0);
    cr_assert_geq (lim.rlim_max, soft, "the hard limit is below %lu", (unsigned long)soft);
    lim.rlim_cur = soft;
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &lim), 0);
}

Test (fdlimit, raise_sets_the_soft_limit_to_the_hard_one)
{
    jr_log_init ("test", JR_LOG_WARN);
    s_soft (64);
    long soft = jr_fd_limit_raise ();
    struct rlimit lim;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &lim), 0);
    cr_assert_eq ((rlim_t)soft, lim.rlim_cur);
    cr_assert_eq (lim.rlim_cur, lim.rlim_max, "soft %lu, hard %lu", (unsigned long)lim.rlim_cur,
                  (unsigned long)lim.rlim_max);
    cr_assert_eq (jr_fd_limit_raise (), soft, "raising again changes nothing");
}

Test (fdlimit, check_warns_past_eighty_percent_of_the_soft_limit)
{
    jr_log_init ("test", JR_LOG_ERROR);
    s_soft (100);
    cr_assert_not (jr_fd_limit_check (), "a test process is far from 100 descriptors");
    int fds[100], n = 0;
    while (!jr_fd_limit_check ()) {
        cr_assert_lt (n, 100, "no warning up to the limit");
        fds[n] = open ("/dev/null", O_RDONLY);
        cr_assert_geq (fds[n], 0);
        n++;
    }
    //  Warned with 81 in use, past 80% of 100, not before.
    int used = 0;
    for (int fd = 0; fd < 100; fd++)
        used += fcntl (fd, F_GETFD) != -1;
    cr_assert_eq (used, 81, "warned with %d in use", used);
    while (n > 0)
        close (fds[--n]);
    cr_assert_not (jr_fd_limit_check ());
}
