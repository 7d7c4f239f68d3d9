/*  plugin.c - load task plugins (shared objects with jr_plugin_init) into the worker  */
#include "worker/plugin.h"
#include "common/log.h"
#include <jr/task.h>
#include <assert.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static int
s_load (const char *path)
{
    void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        jr_error ("plugin=%s error=\"%s\": cannot load plugin", path, dlerror ());
        return JR_EINVALID;
    }
    //  ISO C has no cast from void * to a function pointer; POSIX makes it work.
    int (*init) (void);
    *(void **)&init = dlsym (handle, "jr_plugin_init");
    if (!init) {
        jr_error ("plugin=%s error=\"%s\": cannot load plugin, it has no jr_plugin_init", path,
                  dlerror ());
        return JR_EINVALID;  //  the handle stays open: harmless, and a dlclose could crash
    }
    int rc = init ();
    if (rc != 0) {
        jr_error ("plugin=%s rc=%d: cannot load plugin, jr_plugin_init failed", path, rc);
        return JR_EINVALID;
    }
    jr_info ("plugin=%s: plugin loaded", path);
    return 0;
}

int
jr_plugins_load (const char *list)
{
    if (!list)
        return 0;
    char *copy = strdup (list), *save = NULL;
    assert (copy);
    int rc = 0;
    for (char *path = strtok_r (copy, ",", &save); path && rc == 0;
         path = strtok_r (NULL, ",", &save))
        if (*path)
            rc = s_load (path);
    free (copy);
    return rc;
}
