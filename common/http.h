/*  http.h - a small HTTP/1.1 server on libmicrohttpd: /metrics for Prometheus  */
#ifndef JR_HTTP_H
#define JR_HTTP_H
#include "common/metrics.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct _jr_http_t jr_http_t;

//  Parse "HOST:PORT" (an IPv4 literal, "localhost", or "[IPv6]"), bind and
//  listen now, so a bad address or one in use is said at start: NULL with
//  the reason in err. Serves GET /metrics from the registry (text format
//  0.0.4) on threads of its own once jr_http_start is called; anything else
//  is 404, a method other than GET or HEAD 405. The registry must outlive
//  the server.
jr_http_t *jr_http_new (const char *addr_port, jr_metrics_t *metrics, char *err, size_t err_size);
//  True if addr_port is NULL or HOST:PORT (resolved); else says why on
//  stderr (PROGRAM: error: --metrics: ...), for a check before starting.
bool jr_http_addr_ok (const char *addr_port);
//  A daemon's --metrics HOST:PORT (NULL: off, *out NULL, 0): serve the
//  registry there from now on. 0, or the exit code after saying why on
//  stderr: 2 if it is not HOST:PORT, 1 if it cannot be bound (in use).
int jr_http_metrics (const char *addr_port, jr_metrics_t *metrics, jr_http_t **out);
//  Start serving; 0, or -1 with a message logged.
int jr_http_start (jr_http_t *self);
//  The port it listens on (useful with port 0).
int jr_http_port (const jr_http_t *self);
//  Stop the threads, close the socket; nulls *self_p.
void jr_http_destroy (jr_http_t **self_p);
#endif
