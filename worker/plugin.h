/*  plugin.h - load task plugins (shared objects with jr_plugin_init) into the worker  */
#ifndef JR_WORKER_PLUGIN_H
#define JR_WORKER_PLUGIN_H

//  dlopen (RTLD_NOW) each path of a comma-separated list, in order, and call
//  its jr_plugin_init, which registers tasks with jr_task_register. Plugins
//  stay loaded for the life of the process. Returns 0, or JR_EINVALID after
//  logging which plugin failed and why (missing file, unresolved symbol, no
//  jr_plugin_init, or an init that returned non-zero); plugins before the
//  failing one stay loaded.
int jr_plugins_load (const char *list);
#endif
