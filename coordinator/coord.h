/* coord.h: the coordinator as an object behind a thin main(), so tests
 * can run it in-process on an ephemeral loopback port.
 *
 * It owns: the ROUTER socket that workers and mlopsctl talk to, the
 * worker registry (Paranoid Pirate heartbeats), the job table and stage
 * plans, the shard directory (which worker holds which shard), and the
 * LMDB journal in the data directory that makes a restart lose nothing. */
#ifndef MLOPS_COORD_H
#define MLOPS_COORD_H
#include <stddef.h>

typedef struct {
    const char *bind;      /* e.g. "tcp://0.0.0.0:5555", "tcp://127.0.0.1:0" */
    const char *data_dir;  /* journal + uploaded inputs */
    const char *advertise; /* host to advertise for wildcard binds */
    int heartbeat_ms;      /* default 1000 */
    int verbose;
    /* security (access.c): with cert, every connection is CURVE and a
     * peer's key must be in worker_keys or client_keys; without, only a
     * loopback bind or `insecure` may start, and it warns */
    const char *cert;        /* this coordinator's key pair (zcert) */
    const char *worker_keys; /* directory of authorised worker public keys */
    const char *client_keys; /* directory of authorised client public keys */
    int insecure;            /* allow a plain bind on a non-loopback address */
    /* limits per client key (0 = none) */
    int max_job_bytes;  /* size of a job file */
    int max_input_mib;  /* total size of a job's inputs */
    int max_running;    /* jobs uploading, queued or running at once */
    int retain_jobs;       /* keep at most this many finished jobs, 0 = all */
    int retain_age_s;      /* remove finished jobs older than this, 0 = never */
    const char *metrics_listen;  /* HOST:PORT for GET /metrics, or NULL */
    const char *http_token_file; /* bearer token for a non-loopback listener */
    const char *http_listen;     /* HOST:PORT for the dashboard, or NULL */
    /* bounds (docs/reliability.md, Bounds); 0 = the default */
    int outbox_max; /* messages queued for the next commit before receive and dispatch pause */
    int send_hwm;   /* messages ZeroMQ queues to one peer before a send would block */
    int max_jobs;   /* jobs uploading, queued or running, all clients together */
    /* the longest a journal batch that no message waits on stays open
     * (coord.c: group commit over time); 0: commit at every turn */
    int commit_delay_ms;
    /* assignments in flight per worker slot for the stages that leave it
     * to the cluster (train's epoch tasks); 0 = the default, 2 */
    int prefetch_tasks;
    /* directories whose files a client may name to be read in place
     * (comma-separated; NULL: every input is uploaded), common/localin.h */
    const char *local_inputs;
} coord_config_t;

typedef struct coord coord_t;

/* Opens the journal, replays it, binds. Writes the connectable endpoint
 * to DATA_DIR/endpoint. NULL with err filled on failure. */
coord_t *coord_new(const coord_config_t *cfg, char *err, size_t errlen);
/* Serve until interrupted (SIGINT/SIGTERM) or coord_stop(). */
int coord_run(coord_t *c);
/* One turn of the loop: wait up to timeout_ms for messages, handle them,
 * heartbeat, dispatch, commit and send. Lets a test drive the coordinator
 * from its own thread. 0, or MLOPS_ECANCEL after SIGINT/SIGTERM. */
int coord_poll(coord_t *c, int timeout_ms);
void coord_stop(coord_t *c);
/* Wait until no journal commit is in flight on the committer thread (a
 * test copying the journal's file for a crash image needs it idle). */
void coord_journal_idle(coord_t *c);
const char *coord_endpoint(const coord_t *c);
void coord_destroy(coord_t **pc);

#endif
