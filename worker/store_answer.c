/* store_answer.c: what the store endpoint answers: a ShardGet for a held
 * key gets the shard's exact bytes; anything else an Error of one line,
 * whatever bytes the peer sent. See store_answer.h. */
#include "store_answer.h"
#include "wk_obs.h"
#include <stdio.h>
#include <stdlib.h>

/* Pack env (borrowed) into a frame to send. */
static zframe_t *pack_frame(envelope_t *env)
{
    zframe_t *f = zframe_new(NULL, mlops__envelope__get_packed_size(env));
    if (f) mlops__envelope__pack(env, zframe_data(f));
    return f;
}

static zframe_t *error_frame(uint64_t seq, Mlops__ErrorCode code, char *text)
{
    /* one line, whatever bytes the peer put in a key */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    envelope_t rep;
    Mlops__Error e;
    wire_error_body(&rep, &e, seq, code, text);
    return pack_frame(&rep);
}

zframe_t *wk_store_answer(mlops_store_t *store, const char *name, const envelope_t *env,
                          const char *err, const struct wk_obs *obs)
{
    char text[1024];
    if (!env) {
        snprintf(text, sizeof text, "%s", err && *err ? err : "bad frame");
        return error_frame(0, MLOPS__ERROR_CODE__BAD_FRAME, text);
    }
    if (env->body_case != MLOPS__ENVELOPE__BODY_SHARD_GET || !env->shard_get->key) {
        snprintf(text, sizeof text, "the store endpoint answers ShardGet only, not %s",
                 wire_body_name(env));
        return error_frame(env->seq, MLOPS__ERROR_CODE__BAD_REQUEST, text);
    }
    void *data = NULL;
    size_t len = 0;
    if (mlops_store_get(store, env->shard_get->key, &data, &len) != 0) {
        snprintf(text, sizeof text, "worker %s holds no shard %s", name, env->shard_get->key);
        return error_frame(env->seq, MLOPS__ERROR_CODE__NOT_FOUND, text);
    }
    envelope_t rep;
    wire_init(&rep, env->seq);
    Mlops__ShardData d = MLOPS__SHARD_DATA__INIT;
    d.key = env->shard_get->key;
    d.data.data = data;
    d.data.len = len;
    rep.body_case = MLOPS__ENVELOPE__BODY_SHARD_DATA;
    rep.shard_data = &d;
    zframe_t *f = pack_frame(&rep);
    if (f && obs) {
        mlops_prom_add(obs->served, NULL, NULL, 1);
        mlops_prom_add(obs->served_bytes, NULL, NULL, (double)len);
    }
    free(data);
    return f;
}
