/*  log.h - one line per event: time, level, component, key=value, event  */
#ifndef JR_LOG_H
#define JR_LOG_H
#include <stdbool.h>

typedef enum { JR_LOG_DEBUG, JR_LOG_INFO, JR_LOG_WARN, JR_LOG_ERROR } jr_log_level_t;

//  Name the component ("broker", "worker", ...) and the lowest level printed.
//  $JR_LOG_LEVEL (debug|info|warn|error) overrides the level.
void jr_log_init (const char *component, jr_log_level_t level);
bool jr_log_enabled (jr_log_level_t level);
//  Writes "2026-11-28T20:37:28.123456Z INFO broker <text>" to stderr.
void jr_log (jr_log_level_t level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

#define jr_debug(...) (jr_log_enabled (JR_LOG_DEBUG) ? jr_log (JR_LOG_DEBUG, __VA_ARGS__) : (void)0)
#define jr_info(...)  jr_log (JR_LOG_INFO, __VA_ARGS__)
#define jr_warn(...)  jr_log (JR_LOG_WARN, __VA_ARGS__)
#define jr_error(...) jr_log (JR_LOG_ERROR, __VA_ARGS__)
#endif
