/* sv.h: mlops-serve as an object: the HTTP listener (sv_server.c), the
 * model slot it scores with (sv_model.h), and the follower that loads
 * the model from the coordinator and swaps it when its alias moves
 * (sv_follow.c). main.c only parses flags into sv_config_t.
 *
 * Threads: libmicrohttpd's pool answers requests (they only touch the
 * slot, the metrics registry and the drift window, all thread-safe); the
 * thread that calls sv_run owns the coordinator socket. */
#ifndef SV_H
#define SV_H
#include <pthread.h>
#include <stdint.h>

#include "httpd.h"
#include "prom.h"
#include "sv_model.h"

typedef struct {
    const char *coordinator; /* ZeroMQ endpoint */
    const char *model;       /* NAME@ALIAS or NAME@VERSION */
    const char *listen;      /* HOST:PORT */
    int threads;
    int max_body_mib;
    int window;          /* drift: rows kept */
    const char *psi_moderate, *psi_shifted; /* thresholds, as text */
    const char *http_token_file;
    const char *addr_file; /* write the bound HOST:PORT there */
    int timeout_ms;        /* of a coordinator request */
    int verbose;
} sv_config_t;

typedef struct sv sv_t;

/* Start listening (the model is not loaded yet: /health answers 503).
 * NULL with err on a bad flag value or a listener that cannot start. */
sv_t *sv_new(const sv_config_t *cfg, char *err, size_t errlen);
/* Load the model and follow its alias until SIGINT/SIGTERM or sv_stop.
 * 0, or a negative code with err when the model cannot be served at all
 * (no such model or version, not a classifier). */
int sv_run(sv_t *s, char *err, size_t errlen);
void sv_stop(sv_t *s);
void sv_destroy(sv_t **ps);

#endif
