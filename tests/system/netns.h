/*  netns.h - network namespaces and veth links on this machine, for tests of workers on "other hosts"  */
#ifndef JR_NETNS_H
#define JR_NETNS_H
//  Header-only (static functions), like chaos.h. Everything lives in
//  10.77.0.0/24 on devices made here, so no traffic leaves the machine:
//
//    root namespace: bridge jrc-br 10.77.0.1/24 (broker, ingester bind here)
//      port jrc-va  <-veth->  jrc-va1 10.77.0.2/24 in namespace jrc-a
//      port jrc-vb  <-veth->  jrc-vb1 10.77.0.3/24 in namespace jrc-b
//
//  A link is cut by setting its bridge port down; the namespace behind it
//  then hears nothing (no RST, no FIN), as with a pulled cable.
#include "tests/system/harness.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_HUB_ADDR "10.77.0.1"
#define NS_BRIDGE   "jrc-br"

#define ns_sh jr_h_sh  //  the harness runs the commands

//  Remove what ns_setup makes; safe to call when none of it exists.
static inline void
ns_teardown (void)
{
    ns_sh ("ip netns del jrc-a 2>/dev/null; ip netns del jrc-b 2>/dev/null;"
           " ip link del jrc-va 2>/dev/null; ip link del jrc-vb 2>/dev/null;"
           " ip link del " NS_BRIDGE " 2>/dev/null; true");
}

//  Why namespaces cannot be used here, or NULL if they can.
static inline const char *
ns_unavailable (void)
{
    if (geteuid () != 0)
        return "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN";
    if (ns_sh ("ip netns help >/dev/null 2>&1; ip netns list >/dev/null 2>&1") != 0)
        return "'ip netns' is not available (iproute2 missing?)";
    if (ns_sh ("ip netns add jrc-probe >/dev/null 2>&1 && ip netns del jrc-probe") != 0)
        return "'ip netns add' failed (no permission to make namespaces here?)";
    return NULL;
}

//  Build the bridge, both namespaces and their links; 0 or the failing
//  step's number.
static inline int
ns_setup (void)
{
    ns_teardown ();
    if (ns_sh ("ip netns add jrc-a && ip netns add jrc-b"))
        return 1;
    if (ns_sh ("ip link add " NS_BRIDGE " type bridge && ip link set " NS_BRIDGE
               " type bridge stp_state 0 && ip addr add " NS_HUB_ADDR "/24 dev " NS_BRIDGE
               " && ip link set " NS_BRIDGE " up"))
        return 2;
    const char *names[] = { "a", "b" };
    for (int i = 0; i < 2; i++) {
        const char *x = names[i];
        if (ns_sh ("ip link add jrc-v%s type veth peer name jrc-v%s1 netns jrc-%s"
                   " && ip link set jrc-v%s master " NS_BRIDGE " && ip link set jrc-v%s up"
                   " && ip -n jrc-%s addr add 10.77.0.%d/24 dev jrc-v%s1"
                   " && ip -n jrc-%s link set jrc-v%s1 up && ip -n jrc-%s link set lo up",
                   x, x, x, x, x, x, 2 + i, x, x, x, x))
            return 3 + i;
    }
    return 0;
}

//  Cut (up = false) or restore the link of namespace "a" or "b".
static inline int
ns_link (const char *which, bool up)
{
    return ns_sh ("ip link set jrc-v%s %s", which, up ? "up" : "down");
}

//  True once something in namespace ns can open host:port (timeout_ms).
static inline bool
ns_can_reach (const char *ns, const char *host, int port, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        if (ns_sh ("ip netns exec %s timeout 1 bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null", ns,
                   host, port)
            == 0)
            return true;
        usleep (100000);
    }
    return false;
}
#endif
