/*  error.c - names and texts of error codes and job states  */
#include <jr/jr.h>

const char *
jr_strerror (int code)
{
    switch (code) {
#define JR_X_CASE(sym, num, name, text)                                                            \
    case num: return text;
        JR_ERRORS (JR_X_CASE)
#undef JR_X_CASE
    }
    return "unknown error";
}

const char *
jr_errname (int code)
{
    switch (code) {
#define JR_X_CASE(sym, num, name, text)                                                            \
    case num: return name;
        JR_ERRORS (JR_X_CASE)
#undef JR_X_CASE
    }
    return "UNKNOWN_ERROR";
}

const char *
jr_state_name (int state)
{
    switch (state) {
#define JR_X_CASE(sym, num, name)                                                                  \
    case num: return name;
        JR_STATES (JR_X_CASE)
#undef JR_X_CASE
    }
    return "unknown";
}
