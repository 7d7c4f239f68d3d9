/*  submit.c - example: submit ten echo jobs with libjr and print their payloads  */
//  Usage: jr-example-submit [BROKER [INGESTER]] (else $JR_BROKER, $JR_INGESTER)
#include <czmq.h>
#include <jr/jr.h>
#include <msgpack.h>

#define JOBS 10

static bool
s_print_payload (const jr_job_t *job, void *arg)
{
    (void)arg;
    char id[37];
    jr_id_format (job->id, id);
    printf ("%s %s: %.*s\n", id, job->success ? "ok" : "failed", (int)job->payload.len,
            (const char *)job->payload.ptr);
    return true;  //  keep waiting for the others
}

int
main (int argc, char *argv[])
{
    jr_client_t *client = jr_client_new (argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL);
    if (!client) {
        zsys_error ("bad broker or ingester endpoint");
        return 1;
    }
    //  vars is one msgpack map per job: {"msg": "hello N"}
    jr_job_t jobs[JOBS];
    msgpack_sbuffer vars[JOBS];
    for (int i = 0; i < JOBS; i++) {
        char msg[32];
        int len = snprintf (msg, sizeof msg, "hello %d", i);
        msgpack_sbuffer_init (&vars[i]);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &vars[i], msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str_with_body (&pk, "msg", 3);
        msgpack_pack_str_with_body (&pk, msg, (size_t)len);
        jr_job_init (&jobs[i], "echo");
        jobs[i].vars = (jr_bytes_t){ (const uint8_t *)vars[i].data, vars[i].size };
    }
    //  One call, pipelined in batches; each job gets its own answer.
    int codes[JOBS];
    int rc = jr_client_submit_many (client, jobs, JOBS, codes);
    if (rc)
        zsys_error ("submit: %s (%s)", jr_errname (rc), jr_strerror (rc));
    else {
        uint8_t ids[JOBS][JR_ID_SIZE];
        for (int i = 0; i < JOBS; i++)
            memcpy (ids[i], jobs[i].id, JR_ID_SIZE);
        rc = jr_client_wait_many (client, (const uint8_t (*)[JR_ID_SIZE])ids, JOBS, 30000,
                                  s_print_payload, NULL);
        if (rc)
            zsys_error ("wait: %s (%s)", jr_errname (rc), jr_strerror (rc));
    }
    for (int i = 0; i < JOBS; i++)
        msgpack_sbuffer_destroy (&vars[i]);
    jr_client_destroy (&client);
    return rc ? 1 : 0;
}
