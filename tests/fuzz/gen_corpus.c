/*  gen_corpus.c - writes the seed corpus of the fuzz targets (kept in git)  */
#include "proto/proto.h"
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  Regenerate with: fuzz_gen_corpus tests/fuzz/corpus

#define B(lit) ((jr_bytes_t){ (const uint8_t *)(lit), sizeof (lit) - 1 })

static const char *s_dir;

static void
s_write (const char *target, const char *name, const void *data, size_t size)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/%s/%s", s_dir, target, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size) {
        fprintf (stderr, "gen_corpus: cannot write %s (does the folder exist?)\n", path);
        exit (1);
    }
    fclose (file);
}

static void
s_write_msg (const jr_msg_t *msg, const char *suffix)
{
    uint8_t *data;
    size_t size = jr_msg_encode (msg, &data);
    char name[64];
    snprintf (name, sizeof name, "%s%s", jr_msg_name (msg->type), suffix);
    s_write ("fuzz_msg", name, data, size);
    free (data);
}

//  {"msg": "hi", "n": -7, "argv": ["ls", "-l"], "env": {"A": "1"}, "t": "30"}
static size_t
s_vars (uint8_t *out, size_t max)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init (&buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 5);
    msgpack_pack_str_with_body (&pk, "msg", 3);
    msgpack_pack_str_with_body (&pk, "hi", 2);
    msgpack_pack_str_with_body (&pk, "n", 1);
    msgpack_pack_int64 (&pk, -7);
    msgpack_pack_str_with_body (&pk, "argv", 4);
    msgpack_pack_array (&pk, 2);
    msgpack_pack_str_with_body (&pk, "ls", 2);
    msgpack_pack_str_with_body (&pk, "-l", 2);
    msgpack_pack_str_with_body (&pk, "env", 3);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_str_with_body (&pk, "A", 1);
    msgpack_pack_str_with_body (&pk, "1", 1);
    msgpack_pack_str_with_body (&pk, "t", 1);
    msgpack_pack_str_with_body (&pk, "30", 2);
    size_t size = buf.size < max ? buf.size : max;
    memcpy (out, buf.data, size);
    msgpack_sbuffer_destroy (&buf);
    return size;
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: %s CORPUS-DIR (with fuzz_msg/ and fuzz_vars/ in it)\n", argv[0]);
        return 2;
    }
    s_dir = argv[1];
    uint8_t vars[256];
    size_t vars_len = s_vars (vars, sizeof vars);
    uint8_t id[JR_ID_SIZE];
    for (int i = 0; i < JR_ID_SIZE; i++)
        id[i] = (uint8_t)(0x10 + i);
    id[6] = 0x4a;  //  a v4 UUID
    id[8] = 0x8b;
    uint8_t cursor[JR_LIST_CURSOR] = { 0x6a, 0x41, 0xc9, 0xfc };  //  a LIST cursor: hash, id
    memcpy (cursor + 4, id, JR_ID_SIZE);

    //  One small message of every type, every field set.
    jr_msg_t *msg = jr_msg_new ();
    for (int type = 1; type < JR_MSG_COUNT; type++) {
        unsigned fields = jr_msg_fields (type);
        jr_msg_reset (msg, type);
        msg->tag = 1000 + (uint64_t)type;
        msg->code = JR_EUNKNOWN_PEER;
        msg->text = B ("say READY");
        msg->name = B ("w1");
        msg->host = B ("node-1");
        if (fields & F_TASKS) {
            jr_msg_add_task (msg, B ("echo"));
            jr_msg_add_task (msg, B ("exec"));
        }
        msg->slots = 4;
        msg->wait_ms = 2000;
        if (fields & F_JOBS) {
            jr_job_t *job = jr_msg_add_job (msg);
            memcpy (job->id, id, JR_ID_SIZE);
            job->task = B ("echo");
            job->vars = (jr_bytes_t){ vars, vars_len };
            job->priority = -1;
            job->timeout_ms = 5000;
            job->max_attempts = 3;
            job->attempt = 1;
            job->state = JR_STATE_SUCCEEDED;
            job->success = true;
            job->payload = B ("hi\n");
            job->error = B ("");
            job->worker = B ("w1@node-1");
            job->created_us = 1700000000000000;
            job->accepted_us = 1700000000000100;
        }
        if (fields & F_MARKS) {
            jr_msg_add_mark (msg, id, 1, 0);
            jr_msg_add_mark (msg, id, 2, JR_ESTALE);
        }
        if (fields & F_WORKERS) {
            jr_msg_add_worker (msg, B ("w1@node-1"));
            jr_msg_add_worker (msg, B (""));
        }
        msg->task = B ("echo");
        msg->limit = 1000;
        msg->cursor = (jr_bytes_t){ cursor, JR_LIST_CURSOR };
        s_write_msg (msg, "");
    }
    //  A few near misses for the mutator to start from.
    jr_msg_reset (msg, JR_MSG_SUBMIT);
    s_write_msg (msg, "-empty");
    static const uint8_t bad_version[] = { 0x93, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION + 1, 0x08 };
    s_write ("fuzz_msg", "bad-version", bad_version, sizeof bad_version);
    static const uint8_t huge_count[] = { 0x95, 0xcd, 0x4a, 0x52, JR_PROTO_VERSION,
                                          0x01, 0x00, 0xdd, 0xff, 0xff,
                                          0xff, 0xff };
    s_write ("fuzz_msg", "huge-count", huge_count, sizeof huge_count);
    jr_msg_destroy (&msg);

    //  Vars: a realistic map, every msgpack family, deep nesting.
    s_write ("fuzz_vars", "map", vars, vars_len);
    static const uint8_t families[] = {
        0x81,                                                  //  map of 1
        0xa1, 'k',                                             //  "k":
        0x9d,                                                  //  array of 13
        0xc0, 0xc2, 0xc3,                                      //  nil false true
        0xcc, 0xff, 0xd1, 0x80, 0x00,                          //  uint8, int16
        0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  //  uint64 max
        0xcb, 0x3f, 0xf8, 0,    0,    0,    0,    0,    0,     //  1.5
        0xd9, 0x01, 'x',                                       //  str8
        0xc4, 0x02, 0x00, 0x01,                                //  bin8
        0xd4, 0x01, 0x7f,                                      //  fixext 1
        0xc7, 0x02, 0x05, 0xaa, 0xbb,                          //  ext8
        0xdc, 0x00, 0x01, 0x01,                                //  array16 of 1
        0xde, 0x00, 0x01, 0xa1, 'a',  0xe0,                    //  map16 {"a": -32}
    };
    s_write ("fuzz_vars", "families", families, sizeof families);
    uint8_t deep[40];
    deep[0] = 0x81, deep[1] = 0xa1, deep[2] = 'd';
    for (int i = 3; i < 38; i++)
        deep[i] = 0x91;
    deep[38] = 0xc0;
    s_write ("fuzz_vars", "deep", deep, 39);
    static const uint8_t ints[] = { 0x83, 0xa1, 'n', 0x2a, 0xa1, 'a',  0xa3, '-', '1', '2',
                                    0xa4, 'n',  'a', 'm',  'e',  0xa3, 'a',  'd', 'a' };
    s_write ("fuzz_vars", "ints", ints, sizeof ints);
    return 0;
}
