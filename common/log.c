/*  log.c - one line per event on stderr  */
#include "common/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *s_component = "jr";
static jr_log_level_t s_level = JR_LOG_INFO;
static const char *s_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
jr_log_init (const char *component, jr_log_level_t level)
{
    s_component = component;
    s_level = level;
    const char *env = getenv ("JR_LOG_LEVEL");
    if (env)
        for (int i = 0; i < 4; i++)
            if (strcasecmp (env, s_names[i]) == 0)
                s_level = (jr_log_level_t)i;
}

bool
jr_log_enabled (jr_log_level_t level)
{
    return level >= s_level;
}

void
jr_log (jr_log_level_t level, const char *format, ...)
{
    if (level < s_level)
        return;
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char line[2048];
    int n = (int)strftime (line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf (line + n, sizeof line - (size_t)n, ".%06ldZ %s %s ", (long)tv.tv_usec,
                   s_names[level], s_component);
    va_list args;
    va_start (args, format);
    int m = vsnprintf (line + n, sizeof line - (size_t)n - 1, format, args);
    va_end (args);
    n = m < 0 ? n : n + m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    //  One write per line so lines of concurrent threads never interleave.
    fwrite (line, 1, (size_t)n, stderr);
}
