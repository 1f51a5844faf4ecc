/* netinfo.c: the `netinfo` verb. */
#ifndef MD_NETINFO_H
#define MD_NETINFO_H

#include "error.h"

/* Writes each network namespace's links, IPv4 addresses and main-table routes as one
 * JSON array on stdout. Moves this process into each namespace in turn. */
int md_netinfo (int n_paths, char **paths, md_error_t *err);

#endif
