/* keyring.h: which keys a client of the coordinator (mlopsctl, and
 * mlops-serve, which finds its key exactly the same way) speaks CURVE with.
 *
 * The client key pair, first found of:
 *   1. --key FILE, or $MLOPS_KEY;
 *   2. $MLOPS_HOME/keys/client.key;
 *   3. $HOME/.mlops/keys/client.key (where `mlopsctl up` puts it).
 * The coordinator's public key, first found of:
 *   1. --server-key FILE|KEY, or $MLOPS_SERVER_KEY;
 *   2. coordinator.key in the directory the client key came from.
 * With no client key at all, mlopsctl connects in plain text, which only
 * a coordinator started without keys (loopback or --insecure) answers.
 * `up` points the keyring at its own cluster's keys (mlops_keyring_use_dir). */
#ifndef MLOPS_KEYRING_H
#define MLOPS_KEYRING_H
#include <stddef.h>

#include "transport.h"

/* The --key and --server-key values given (NULL if absent). */
void mlops_keyring_set(const char *key, const char *server_key);
/* Use DIR/client.key and DIR/coordinator.key, whatever else is set;
 * NULL: no key at all (`up --insecure`). */
void mlops_keyring_use_dir(const char *dir);
/* The security of a connection to the coordinator (server_key NULL) or
 * to a worker store (its key from an export plan). Resolved on first
 * use; NULL with err when a key named is unreadable. *sec is filled and
 * borrows from the keyring. */
int mlops_keyring_sec(const char *server_key, transport_sec_t *sec, char *err, size_t errlen);
/* A hint for "cannot reach": which key was used, or that none was. */
void mlops_keyring_hint(char *out, size_t n);

#endif
