/* auth.c: see auth.h. The ZAP handler is a czmq actor (one thread) with a
 * REP socket on inproc://zeromq.zap.01 in czmq's shared context; servers
 * add and remove their domains through the actor's pipe, so the key
 * stores are only ever touched by the actor's thread. */
#include "auth.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

struct mlops_auth {
    char domain[64];
    char *what;
    char *dirs[2]; /* worker keys, client keys */
    zcertstore_t *stores[2];
    _Atomic uint64_t refused;
    int registered;
};

static pthread_mutex_t zap_mu = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *zap_actor;
static int zap_refs;
static _Atomic unsigned zap_next;
static _Atomic int zap_failed; /* the last handler started could not bind */

static void stores_open(mlops_auth_t *a)
{
    for (int i = 0; i < 2; i++) {
        zcertstore_destroy(&a->stores[i]);
        a->stores[i] = zcertstore_new(a->dirs[i]);
    }
}

static void stores_close(mlops_auth_t *a)
{
    for (int i = 0; i < 2; i++) zcertstore_destroy(&a->stores[i]);
}

/* One ZAP request: version, request id, domain, address, identity,
 * mechanism, credentials. The reply: version, request id, status code,
 * status text, user id, metadata. */
static void zap_answer(zsock_t *rep, zhashx_t *domains)
{
    zmsg_t *req = zmsg_recv(rep);
    if (!req) return;
    char *version = zmsg_popstr(req), *reqid = zmsg_popstr(req), *domain = zmsg_popstr(req),
         *address = zmsg_popstr(req), *identity = zmsg_popstr(req), *mech = zmsg_popstr(req);
    zframe_t *cred = zmsg_pop(req);
    const char *code = "400", *text = "unknown key";
    char user[64] = "";
    mlops_auth_t *a = domain ? zhashx_lookup(domains, domain) : NULL;
    if (!a) {
        text = "unknown ZAP domain";
    } else if (!mech || strcmp(mech, "CURVE") || !cred || zframe_size(cred) != 32) {
        text = "CURVE required";
    } else {
        char z85[MLOPS_KEY_Z85_LEN + 1];
        zmq_z85_encode(z85, zframe_data(cred), 32);
        static const char *const roles[2] = {"worker", "client"};
        for (int i = 0; i < 2 && !user[0]; i++)
            if (a->stores[i] && zcertstore_lookup(a->stores[i], z85)) {
                snprintf(user, sizeof user, "%s:%s", roles[i], z85);
                code = "200";
                text = "OK";
            }
        if (!user[0]) {
            char fp[MLOPS_KEY_FP_LEN + 1];
            mlops_keys_fingerprint(z85, fp);
            uint64_t n = ++a->refused;
            LOG_W("%s: refused a connection from %s: key %s is not authorised (%llu refused so "
                  "far)",
                  a->what, address && *address ? address : "?", fp, (unsigned long long)n);
        }
    }
    zmsg_t *out = zmsg_new();
    zmsg_addstr(out, "1.0");
    zmsg_addstr(out, reqid ? reqid : "");
    zmsg_addstr(out, code);
    zmsg_addstr(out, text);
    zmsg_addstr(out, user);
    zmsg_addmem(out, "", 0);
    zmsg_send(&out, rep);
    zframe_destroy(&cred);
    zstr_free(&version);
    zstr_free(&reqid);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&identity);
    zstr_free(&mech);
    zmsg_destroy(&req);
}

static void zap_run(zsock_t *pipe, void *args)
{
    (void)args;
    zsock_t *rep = zsock_new(ZMQ_REP);
    /* a handler destroyed a moment ago (its last server gone) holds the
     * endpoint until libzmq's reaper thread has closed its socket: the
     * bind is tried again for up to a second */
    int rc = -1;
    for (int i = 0; rep && i < 200; i++) {
        rc = zsock_bind(rep, "inproc://zeromq.zap.01");
        if (rc == 0 || zmq_errno() != EADDRINUSE) break;
        zclock_sleep(5);
    }
    if (rc != 0) {
        zsock_destroy(&rep);
        zap_failed = 1; /* seen by mlops_auth_new once zactor_new returns */
        zsock_signal(pipe, 1);
        return;
    }
    zhashx_t *domains = zhashx_new();
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    zsock_signal(pipe, 0);
    while (poller && domains) {
        void *which = zpoller_wait(poller, -1);
        if (which == rep) {
            zap_answer(rep, domains);
            continue;
        }
        if (which != pipe) break;
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(pipe, "sp", &cmd, &ptr) != 0) break;
        int term = !cmd || !strcmp(cmd, "$TERM");
        mlops_auth_t *a = ptr;
        if (!term && a && !strcmp(cmd, "ADD")) {
            stores_open(a);
            zhashx_insert(domains, a->domain, a);
        } else if (!term && a && !strcmp(cmd, "DEL")) {
            zhashx_delete(domains, a->domain);
            stores_close(a);
        } else if (!term && a && !strcmp(cmd, "RELOAD")) {
            stores_open(a);
        }
        zstr_free(&cmd);
        if (term) break;
        zsock_signal(pipe, 0);
    }
    zpoller_destroy(&poller);
    zhashx_destroy(&domains);
    zsock_destroy(&rep);
}

static void zap_call(const char *cmd, mlops_auth_t *a)
{
    zsock_send(zap_actor, "sp", cmd, a);
    zsock_wait(zap_actor);
}

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

mlops_auth_t *mlops_auth_new(const char *worker_dir, const char *client_dir, const char *what,
                             char *err, size_t errlen)
{
    const char *dirs[2] = {worker_dir, client_dir};
    static const char *const flags[2] = {"--worker-keys", "--client-keys"};
    for (int i = 0; i < 2; i++)
        if (!is_dir(dirs[i])) {
            mlops_seterr(err, errlen, MLOPS_EINVAL, "%s %s: not a directory of public keys",
                         flags[i], dirs[i] ? dirs[i] : "(not given)");
            return NULL;
        }
    mlops_auth_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    snprintf(a->domain, sizeof a->domain, "mlops-%u", ++zap_next);
    a->what = strdup(what ? what : "server");
    a->dirs[0] = strdup(worker_dir);
    a->dirs[1] = strdup(client_dir);
    if (!a->what || !a->dirs[0] || !a->dirs[1]) {
        mlops_auth_destroy(&a);
        mlops_seterr(err, errlen, MLOPS_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&zap_mu);
    if (!zap_actor) {
        zap_failed = 0;
        zap_actor = zactor_new(zap_run, NULL);
        /* czmq's zactor_new drops the handler's start status: an actor
         * that could not bind has ended, and a command sent to it would
         * wait for ever */
        if (zap_actor && zap_failed) zactor_destroy(&zap_actor);
    }
    if (!zap_actor) {
        pthread_mutex_unlock(&zap_mu);
        free(a->what);
        free(a->dirs[0]);
        free(a->dirs[1]);
        free(a);
        mlops_seterr(err, errlen, MLOPS_EIO,
                     "cannot start the ZAP handler on "
                     "inproc://zeromq.zap.01 (another one in this "
                     "process?)");
        return NULL;
    }
    zap_refs++;
    zap_call("ADD", a);
    a->registered = 1;
    pthread_mutex_unlock(&zap_mu);
    return a;
}

const char *mlops_auth_domain(const mlops_auth_t *a) { return a->domain; }
uint64_t mlops_auth_refused(const mlops_auth_t *a) { return a->refused; }

void mlops_auth_reload(mlops_auth_t *a)
{
    pthread_mutex_lock(&zap_mu);
    if (zap_actor) zap_call("RELOAD", a);
    pthread_mutex_unlock(&zap_mu);
}

void mlops_auth_destroy(mlops_auth_t **pa)
{
    if (!pa || !*pa) return;
    mlops_auth_t *a = *pa;
    pthread_mutex_lock(&zap_mu);
    if (zap_actor && a->registered) {
        zap_call("DEL", a);
        if (--zap_refs == 0) zactor_destroy(&zap_actor);
    }
    pthread_mutex_unlock(&zap_mu);
    free(a->what);
    free(a->dirs[0]);
    free(a->dirs[1]);
    free(a);
    *pa = NULL;
}

mlops_role_t mlops_auth_role(const char *user_id, char key[41])
{
    mlops_role_t r = MLOPS_ROLE_NONE;
    if (!user_id) return r;
    if (!strncmp(user_id, "worker:", 7)) r = MLOPS_ROLE_WORKER;
    else if (!strncmp(user_id, "client:", 7)) r = MLOPS_ROLE_CLIENT;
    if (r == MLOPS_ROLE_NONE || strlen(user_id + 7) != 40) return MLOPS_ROLE_NONE;
    if (key) memcpy(key, user_id + 7, 41);
    return r;
}
