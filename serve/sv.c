/* sv.c: the mlops-serve object (sv.h): flags checked, the listener
 * started, and a newly loaded model put live. */
#include "err.h"
#include "log.h"
#include "sv_internal.h"
#include "token.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_name(const char *s, size_t max)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n == strlen(s) && n >= 1 && n <= max;
}

static int threshold(const char *flag, const char *text, double *out, char *err, size_t errlen)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (!*text || *end || !(v > 0) || v > 100)
        return mlops_seterr(err, errlen, MLOPS_EINVAL, "--%s: expected a number > 0, got '%s'",
                            flag, text);
    *out = v;
    return 0;
}

sv_t *sv_new(const sv_config_t *cfg, char *err, size_t errlen)
{
    sv_t *s = calloc(1, sizeof *s);
    if (!s) {
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    sv_slot_init(&s->slot);
    const char *at = strchr(cfg->model, '@');
    size_t nl = at ? (size_t)(at - cfg->model) : strlen(cfg->model);
    snprintf(s->name, sizeof s->name, "%.*s", (int)(nl < 128 ? nl : 128), cfg->model);
    snprintf(s->ref, sizeof s->ref, "%s", at ? at + 1 : "");
    if (!at || nl > 128 || !valid_name(s->name, 128) || !valid_name(s->ref, 64)) {
        mlops_seterr(err, errlen, MLOPS_EINVAL,
                     "--model '%s': expected NAME@ALIAS or NAME@VERSION ([A-Za-z0-9._-])",
                     cfg->model);
        goto fail;
    }
    s->by_version = s->ref[0] >= '0' && s->ref[0] <= '9';
    if (threshold("psi-moderate", cfg->psi_moderate, &s->psi_moderate, err, errlen) ||
        threshold("psi-shifted", cfg->psi_shifted, &s->psi_shifted, err, errlen))
        goto fail;
    if (s->psi_moderate >= s->psi_shifted) {
        mlops_seterr(err, errlen, MLOPS_EINVAL, "--psi-moderate (%g) must be below --psi-shifted (%g)",
                     s->psi_moderate, s->psi_shifted);
        goto fail;
    }
    if (cfg->http_token_file &&
        mlops_token_load(cfg->http_token_file, s->token, sizeof s->token, err, errlen) != 0)
        goto fail;
    if (sv_server_start(s, err, errlen) != 0) goto fail;
    if (cfg->addr_file) {
        FILE *f = fopen(cfg->addr_file, "w");
        if (!f || fprintf(f, "%s\n", mlops_httpd_addr(s->http)) < 0 || fclose(f) != 0) {
            mlops_seterr(err, errlen, MLOPS_EIO, "%s: cannot write the address", cfg->addr_file);
            goto fail;
        }
    }
    LOG_I("serving %s on http://%s/ (%d threads)", cfg->model, mlops_httpd_addr(s->http),
          cfg->threads);
    return s;
fail:
    sv_destroy(&s);
    return NULL;
}

void sv_install(sv_t *s, sv_model_t *m)
{
    if (m->art)
        m->drift = sv_drift_new(m->art->reference, m->cols, m->ncols, m->art->classes,
                            m->art->nclasses, (size_t)s->cfg.window);
    char ver[16];
    snprintf(ver, sizeof ver, "%u", m->version);
    sv_model_t *old = sv_slot_get(&s->slot);
    if (old) {
        char ov[16];
        snprintf(ov, sizeof ov, "%u", old->version);
        mlops_prom_set(s->info, old->name, ov, 0);
        mlops_prom_add(s->swaps, NULL, NULL, 1);
        LOG_I("model %s: version %u goes live (was %u)", m->name, m->version, old->version);
    } else {
        LOG_I("model %s: version %u goes live", m->name, m->version);
    }
    sv_model_release(&old);
    mlops_prom_set(s->info, m->name, ver, 1);
    sv_slot_swap(&s->slot, m);
}

void sv_stop(sv_t *s) { atomic_store(&s->stop, 1); }

void sv_destroy(sv_t **ps)
{
    if (!ps || !*ps) return;
    sv_t *s = *ps;
    mlops_httpd_destroy(&s->http); /* first: no handler runs after this */
    sv_slot_fini(&s->slot);
    mlops_prom_destroy(&s->prom);
    free(s);
    *ps = NULL;
}
