/* fuzz_wire.c: decoding a peer's frame into an Envelope (wire_decode in
 * common/wire.c, the checks wire_recv makes on every frame the
 * coordinator, the workers and mlopsctl receive), on any bytes.
 *
 * Properties checked, beyond "no crash, no leak, no UB": a refused frame
 * gets a one-line message; an accepted one has the protocol version and
 * a body with a name, and packs again to bytes that decode to an
 * envelope packing to the same bytes (what a daemon relays or journals
 * is what it received).
 *
 * Unknown fields are the exception: protobuf-c keeps them and packs them
 * back as they came, even ones no encoder may write (field number 0), so
 * for an envelope holding any, only "packs without a crash" is checked.
 * Our own senders never write unknown fields. */
#include "fuzz.h"

#include <string.h>

#include "err.h"
#include "wire.h"

/* 1 if m or any message inside it kept unknown fields. */
static int has_unknown(const ProtobufCMessage *m)
{
    if (!m)
        return 0;
    if (m->n_unknown_fields)
        return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *at = (const char *)m + f->offset;
        /* a oneof's members share one union: only the set case is valid */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
            for (size_t j = 0; j < n; j++)
                if (has_unknown(v[j]))
                    return 1;
        } else if (has_unknown(*(ProtobufCMessage *const *)at)) {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    envelope_t *env = wire_decode(data, size, err, sizeof err);
    if (!env) {
        FUZZ_CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
        return 0;
    }
    FUZZ_CHECK(env->version == MLOPS_WIRE_VERSION);
    FUZZ_CHECK(env->body_case != MLOPS__ENVELOPE__BODY__NOT_SET);
    (void)wire_body_name(env);

    size_t n1 = mlops__envelope__get_packed_size(env);
    uint8_t *b1 = malloc(n1 ? n1 : 1);
    FUZZ_CHECK(b1 != NULL);
    FUZZ_CHECK(mlops__envelope__pack(env, b1) == n1);
    if (has_unknown(&env->base)) {
        free(b1);
        wire_free(&env);
        return 0;
    }
    envelope_t *again = wire_decode(b1, n1, err, sizeof err);
    if (!again)
        fprintf(stderr, "a packed envelope does not decode: %s\n", err);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(again->body_case == env->body_case && again->seq == env->seq);
    size_t n2 = mlops__envelope__get_packed_size(again);
    uint8_t *b2 = malloc(n2 ? n2 : 1);
    FUZZ_CHECK(b2 != NULL);
    FUZZ_CHECK(mlops__envelope__pack(again, b2) == n2);
    FUZZ_CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    wire_free(&again);
    wire_free(&env);
    FUZZ_CHECK(env == NULL);
    return 0;
}
