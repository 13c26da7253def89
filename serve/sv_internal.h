/* sv_internal.h: what serve's modules share: the sv_t struct. */
#ifndef SV_INTERNAL_H
#define SV_INTERNAL_H
#include <stdatomic.h>

#include "sv.h"
#include "sv_drift.h"

struct sv {
    sv_config_t cfg;
    char name[129], ref[65]; /* --model split at '@' */
    int by_version;          /* ref is a version number: nothing to follow */
    sv_slot_t slot;
    mlops_httpd_t *http;
    char token[128];
    mlops_prom_t *prom;
    mlops_prom_fam_t *requests, *latency, *rows, *info, *swaps, *psi, *drift_rows;
    sv_drift_t *drift;
    double psi_moderate, psi_shifted;
    atomic_int stop;
};

/* sv_server.c: the routes; start the listener. */
int sv_server_start(sv_t *s, char *err, size_t errlen);
/* sv_follow.c: a newly loaded model goes live (metrics, drift window). */
void sv_install(sv_t *s, sv_model_t *m);

#endif
