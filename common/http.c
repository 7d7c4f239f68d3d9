/*  http.c - a small HTTP/1.1 server on libmicrohttpd: /metrics for Prometheus  */
#include "common/http.h"
#include "common/log.h"
#include "common/opts.h"
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JR_HTTP_CONNECTIONS 64  //  at once; more are refused by the server
#define JR_HTTP_TIMEOUT_S   15  //  an idle or slow connection is closed after this

struct _jr_http_t {
    int fd;  //  the listening socket, ours until the daemon takes it
    int port;
    jr_metrics_t *metrics;
    struct MHD_Daemon *daemon;
};

//  Split "host:port" / "[v6]:port" into a resolved socket address.
static int
s_resolve (const char *addr_port, struct sockaddr_storage *addr, socklen_t *len, char *err,
           size_t err_size)
{
    char host[256];
    const char *colon = strrchr (addr_port, ':');
    const char *start = addr_port, *end = colon;
    if (*addr_port == '[') {
        start++;
        end = strchr (addr_port, ']');
        if (!end || end + 1 != colon)
            end = NULL;
    }
    char *tail = NULL;
    long port = colon ? strtol (colon + 1, &tail, 10) : -1;
    if (!colon || !end || end == start || (size_t)(end - start) >= sizeof host || !*(colon + 1)
        || *tail || port < 0 || port > 65535) {
        snprintf (err, err_size, "'%s' is not HOST:PORT (e.g. 127.0.0.1:9101)", addr_port);
        return -1;
    }
    memcpy (host, start, (size_t)(end - start));
    host[end - start] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    char service[8];
    snprintf (service, sizeof service, "%ld", port);
    int rc = getaddrinfo (host, service, &hints, &found);
    if (rc || !found) {
        snprintf (err, err_size, "'%s': %s", host, gai_strerror (rc));
        return -1;
    }
    memcpy (addr, found->ai_addr, found->ai_addrlen);
    *len = found->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

jr_http_t *
jr_http_new (const char *addr_port, jr_metrics_t *metrics, char *err, size_t err_size)
{
    struct sockaddr_storage addr;
    socklen_t len = 0;
    *err = '\0';
    if (s_resolve (addr_port, &addr, &len, err, err_size))
        return NULL;
    int fd = socket (addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)
        || bind (fd, (struct sockaddr *)&addr, len) || listen (fd, 64)) {
        snprintf (err, err_size, "%s: %s", addr_port, strerror (errno));
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    getsockname (fd, (struct sockaddr *)&addr, &len);
    jr_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        close (fd);
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->fd = fd;
    self->metrics = metrics;
    self->port = ntohs (addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                   : ((struct sockaddr_in *)&addr)->sin_port);
    return self;
}

bool
jr_http_addr_ok (const char *addr_port)
{
    char err[512];
    struct sockaddr_storage addr;
    socklen_t len;
    if (addr_port && s_resolve (addr_port, &addr, &len, err, sizeof err)) {
        jr_opts_error ("--metrics: %s", err);
        return false;
    }
    return true;
}

int
jr_http_metrics (const char *addr_port, jr_metrics_t *metrics, jr_http_t **out)
{
    *out = NULL;
    if (!addr_port)
        return 0;
    if (!jr_http_addr_ok (addr_port))
        return 2;
    char err[512];
    jr_http_t *self = jr_http_new (addr_port, metrics, err, sizeof err);
    if (!self || jr_http_start (self)) {
        jr_opts_error ("--metrics: cannot serve on %s", *err ? err : addr_port);
        jr_http_destroy (&self);
        return 1;
    }
    jr_info ("metrics=http://%s/metrics: serving", addr_port);
    *out = self;
    return 0;
}

//  A reply of a static text, with the headers every reply has.
static enum MHD_Result
s_reply (struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len,
         enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (len, body, mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Cache-Control", "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, "Allow", "GET, HEAD");
    enum MHD_Result result = MHD_queue_response (conn, status, response);
    MHD_destroy_response (response);
    return result;
}

//  The whole exposition in a buffer grown to fit (freed by libmicrohttpd).
static char *
s_expose (jr_metrics_t *metrics, size_t *len)
{
    size_t size = 64 * 1024;
    for (;;) {
        char *text = malloc (size);
        if (!text)
            return NULL;
        size_t need = jr_metrics_expose (metrics, text, size);
        if (need < size) {
            *len = need;
            return text;
        }
        free (text);
        size = need + 4096;  //  new metrics may come between the two reads
    }
}

static enum MHD_Result
s_handle (void *arg, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    jr_http_t *self = arg;
    if (*upload_size) {  //  no handler takes a body: drop it
        *upload_size = 0;
        return MHD_YES;
    }
    if (!*state) {  //  the first call has the headers only; answer on the next
        *state = self;
        return MHD_YES;
    }
    static char not_found[] = "not found: this server has /metrics\n";
    static char not_allowed[] = "method not allowed: GET or HEAD\n";
    const char *text = "text/plain; charset=utf-8";
    if (strcmp (url, "/metrics") != 0)
        return s_reply (conn, MHD_HTTP_NOT_FOUND, text, not_found, strlen (not_found),
                        MHD_RESPMEM_PERSISTENT);
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
        return s_reply (conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, not_allowed, strlen (not_allowed),
                        MHD_RESPMEM_PERSISTENT);
    size_t len = 0;
    char *body = s_expose (self->metrics, &len);
    if (!body)
        return MHD_NO;
    return s_reply (conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
                    MHD_RESPMEM_MUST_FREE);
}

int
jr_http_start (jr_http_t *self)
{
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, s_handle, self, MHD_OPTION_LISTEN_SOCKET, self->fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)JR_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)JR_HTTP_TIMEOUT_S,
        MHD_OPTION_END);
    if (!self->daemon) {
        jr_error ("port=%d: cannot start the HTTP server", self->port);
        return -1;
    }
    self->fd = -1;  //  the daemon's now
    return 0;
}

int
jr_http_port (const jr_http_t *self)
{
    return self->port;
}

void
jr_http_destroy (jr_http_t **self_p)
{
    jr_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    if (self->fd >= 0)
        close (self->fd);
    free (self);
    *self_p = NULL;
}
