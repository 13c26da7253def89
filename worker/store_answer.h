/* store_answer.h: the store endpoint's reply to one request, apart from
 * its socket, so that the one code path the endpoint runs can also be
 * driven on bytes alone (tests/fuzz/fuzz_worker.c). Private to the
 * worker and its tests. */
#ifndef MLOPS_WORKER_STORE_ANSWER_H
#define MLOPS_WORKER_STORE_ANSWER_H
#include <czmq.h>
#include "store.h"
#include "wire.h"

struct wk_obs;

/* The reply to one request a peer or mlopsctl sent to the store endpoint
 * of worker `name`, whose key role was already checked: env (borrowed)
 * or, for a frame that did not decode, NULL with err saying why. The
 * packed ShardData or one-line Error envelope, to send to the peer; NULL
 * only when out of memory. Served shards are counted in obs (may be
 * NULL). */
zframe_t *wk_store_answer(mlops_store_t *store, const char *name, const envelope_t *env,
                          const char *err, const struct wk_obs *obs);

#endif
