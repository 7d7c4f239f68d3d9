/*  keygen.c - jr keygen: a new CurveZMQ certificate pair for one process or person  */
#include "cli/cli.h"
#include "proto/keys.h"

int
jr_cli_keygen (jr_opt_t *opts, int nargs, char **argv)
{
    //  argv[0] is "jr", argv[1] "keygen", argv[2] the NAME
    const char *role_name = jr_cli_opt (opts, "role")->value;
    const char *out = jr_cli_opt (opts, "out")->value;
    if (nargs != 3 || !role_name || !out) {
        jr_cli_error ("keygen needs --role ROLE, a NAME and --out DIR (see jr keygen --help)");
        return EXIT_USAGE;
    }
    jr_role_t role = jr_role_parse (role_name);
    if (role == JR_ROLE_NONE) {
        jr_cli_error ("--role must be broker, ingester, worker, client or admin, not '%s'",
                      role_name);
        return EXIT_USAGE;
    }
    char err[600];
    if (jr_keys_generate (out, argv[2], role, err, sizeof err) != 0) {
        jr_cli_error ("%s", err);
        return EXIT_FAILED;
    }
    printf ("%s/%s.cert\n%s/%s.cert_secret\n", out, argv[2], out, argv[2]);
    return EXIT_OK;
}
