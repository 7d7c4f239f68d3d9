/*  fdlimit.h - the file descriptor limit: raised at start, watched while running  */
#ifndef JR_FDLIMIT_H
#define JR_FDLIMIT_H
#include <stdbool.h>

//  Raise the soft limit on open files to the hard one (every connection is
//  a descriptor: at the limit libzmq cannot accept, spins, and new peers
//  time out), and log the limit. Returns the soft limit now, or -1 if it
//  cannot be read.
long jr_fd_limit_raise (void);
//  Count the descriptors in use and warn when they pass 80% of the soft
//  limit. Cheap enough for each stats line (one readdir of /proc/self/fd),
//  not for every loop turn. Returns true when near (or at) the limit.
bool jr_fd_limit_check (void);
#endif
