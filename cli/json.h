/*  json.h - JSON to msgpack and msgpack (or a whole job) back to JSON  */
#ifndef JR_CLI_JSON_H
#define JR_CLI_JSON_H
#include <jr/jr.h>
#include <msgpack.h>
#include <stdio.h>

#define JR_JSON_MAX_DEPTH 32  //  nested objects/arrays; matches JR_MP_MAX_DEPTH

//  Parse one JSON text (strict RFC 8259, nesting up to JR_JSON_MAX_DEPTH)
//  and append its msgpack form to out. Integers become msgpack ints, other
//  numbers doubles. Returns 0, or JR_EINVALID with a message naming the line
//  and column in err (if not NULL); on failure out is left as it was.
int jr_json_to_msgpack (const char *json, size_t len, msgpack_sbuffer *out, char *err,
                        size_t errlen);

//  Print one msgpack value as JSON (null if the bytes are not exactly one
//  well-formed value). See json.c for how bin, ext and odd keys print.
void jr_msgpack_to_json (jr_bytes_t mp, FILE *out);

//  Print bytes as a JSON string: as text if valid UTF-8, else "base64:...".
void jr_json_print_bytes (jr_bytes_t bytes, FILE *out);

//  Print a result job as one JSON object (no trailing newline): id, task,
//  state, success, attempt, worker, payload, error, vars and metrics.
void jr_json_print_job (const jr_job_t *job, FILE *out);
#endif
