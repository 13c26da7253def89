/* task_thread.h: per-executor-thread state (private to the worker). */
#ifndef MLOPS_WORKER_TASK_THREAD_H
#define MLOPS_WORKER_TASK_THREAD_H
#include <czmq.h>
#include "jobspec.h"

typedef struct {
    zhashx_t *peers;        /* "endpoint key" -> DEALER */
    zcert_t *cert;          /* the worker's key pair (borrowed, read only); NULL plain */
    uint64_t seq;
    mlops_jobspec_t *spec;  /* last job's spec */
    char *spec_job;
    char *cache_key;        /* one built object (wk_task_cache_get/put) */
    void *cache;
    void (*cache_free)(void *);
    const char *local_inputs; /* the worker's --local-inputs (borrowed), NULL none */
} task_thread_t;

/* `cert` (borrowed) is the key pair peer sockets use; NULL for plain. */
task_thread_t *wk_task_thread_new(zcert_t *cert);
void wk_task_thread_destroy(task_thread_t **pt);

#endif
