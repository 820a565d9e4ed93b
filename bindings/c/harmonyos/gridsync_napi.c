/*
 * An example N-API module for a HarmonyOS NEXT app over the gridsync C API:
 * open, reportCase and sync, each returning a Promise whose work runs on a worker
 * thread (napi_create_async_work), never on the ArkTS thread. See
 * bindings/HARMONYOS.md.
 *
 * Not built for OpenHarmony anywhere in this project. bindings/c/tests/c_program.rs
 * compiles this very file against Node.js's Node-API headers (the same napi_*
 * calls) and drives it from Node against a real `gridsync serve`.
 */
#include <stdlib.h>
#include <string.h>
#include <napi/native_api.h>
#include "gridsync.h"

typedef struct call call;
struct call {
    napi_async_work work;
    napi_deferred deferred;
    napi_ref engine_ref;            /* keeps the engine object alive during the call */
    gridsync_engine *engine;
    char *text, *user, *device;     /* inputs, malloc'd */
    uint8_t *key;                   /* a copy of the ArkTS buffer, zeroed after use */
    size_t key_len;
    void (*run)(call *);            /* on the worker thread */
    napi_value (*result)(napi_env, call *);  /* on the ArkTS thread */
    gridsync_status status;
    char *error;                    /* gridsync_last_error_message(), read on the worker */
    char *out_text;
    gridsync_engine *opened;
    gridsync_sync_summary summary;
};

/* A new call, or NULL with a JS exception pending. */
static call *new_call(napi_env env) {
    call *c = calloc(1, sizeof *c);
    if (!c) napi_throw_error(env, NULL, "gridsync: out of memory");
    return c;
}

/* A malloc'd copy of a JS string, or NULL (gridsync then answers NULL_ARGUMENT). */
static char *string_arg(napi_env env, napi_value v) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
    char *s = malloc(len + 1);
    if (s) napi_get_value_string_utf8(env, v, s, len + 1, &len);
    return s;
}

static void free_engine(napi_env env, void *data, void *hint) {
    (void)env; (void)hint;
    gridsync_engine_free(data);
}

static void execute(napi_env env, void *data) {
    (void)env;
    call *c = data;
    c->run(c);
    if (c->status != GRIDSYNC_STATUS_OK) c->error = gridsync_last_error_message();
}

static void complete(napi_env env, napi_status status, void *data) {
    (void)status;
    call *c = data;
    if (c->status == GRIDSYNC_STATUS_OK) {
        napi_resolve_deferred(env, c->deferred, c->result(env, c));
    } else {
        napi_value code, message, error;
        napi_create_string_utf8(env, gridsync_status_name(c->status), NAPI_AUTO_LENGTH, &code);
        napi_create_string_utf8(env, c->error ? c->error : "", NAPI_AUTO_LENGTH, &message);
        napi_create_error(env, code, message, &error);
        napi_reject_deferred(env, c->deferred, error);
        gridsync_engine_free(c->opened);   /* NULL after a failure: nothing */
    }
    if (c->engine_ref) napi_delete_reference(env, c->engine_ref);
    napi_delete_async_work(env, c->work);
    gridsync_string_free(c->error);
    gridsync_string_free(c->out_text);
    free(c->text); free(c->user); free(c->device);
    if (c->key) memset(c->key, 0, c->key_len);
    free(c->key);
    free(c);
}

/* Queue `c`; returns its promise. `engine_arg` (may be NULL) is the external. */
static napi_value start(napi_env env, call *c, napi_value engine_arg, const char *name) {
    napi_value promise, resource;
    if (engine_arg) {
        void *engine = NULL;
        napi_get_value_external(env, engine_arg, &engine);
        c->engine = engine;
        napi_create_reference(env, engine_arg, 1, &c->engine_ref);
    }
    napi_create_promise(env, &c->deferred, &promise);
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
    napi_create_async_work(env, NULL, resource, execute, complete, c, &c->work);
    napi_queue_async_work(env, c->work);
    return promise;
}

/* open(path, userId, deviceId, key: ArrayBuffer): Promise<Engine> */
static void run_open(call *c) {
    c->status = gridsync_engine_open(c->text, c->user, c->device, c->key, c->key_len,
                                     &c->opened);
}
static napi_value result_open(napi_env env, call *c) {
    napi_value engine;
    napi_create_external(env, c->opened, free_engine, NULL, &engine);
    return engine;
}
static napi_value Open(napi_env env, napi_callback_info info) {
    size_t argc = 4;
    napi_value argv[4] = {NULL};
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    call *c = new_call(env);
    if (!c) return NULL;
    void *key = NULL;
    size_t key_len = 0;
    /* Copied: the ArkTS buffer may move or change while the worker runs. A key of
     * the wrong length is gridsync's INVALID_INPUT, a missing one NULL_ARGUMENT. */
    if (napi_get_arraybuffer_info(env, argv[3], &key, &key_len) == napi_ok && key_len > 0) {
        c->key = malloc(key_len);
        if (c->key) { memcpy(c->key, key, key_len); c->key_len = key_len; }
    }
    c->text = string_arg(env, argv[0]);
    c->user = string_arg(env, argv[1]);
    c->device = string_arg(env, argv[2]);
    c->run = run_open;
    c->result = result_open;
    return start(env, c, NULL, "gridsync.open");
}

/* reportCase(engine, caseJson): Promise<string>, the case id */
static void run_report(call *c) {
    c->status = gridsync_engine_report_case(c->engine, c->text, &c->out_text);
}
static napi_value result_text(napi_env env, call *c) {
    napi_value s;
    napi_create_string_utf8(env, c->out_text, NAPI_AUTO_LENGTH, &s);
    return s;
}
static napi_value ReportCase(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2] = {NULL};
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    call *c = new_call(env);
    if (!c) return NULL;
    c->text = string_arg(env, argv[1]);
    c->run = run_report;
    c->result = result_text;
    return start(env, c, argv[0], "gridsync.reportCase");
}

/* sync(engine): Promise<{pushed, pulled, photosUploaded}> */
static void run_sync(call *c) {
    c->status = gridsync_engine_sync(c->engine, NULL, NULL, &c->summary);
}
static napi_value result_sync(napi_env env, call *c) {
    napi_value o, v;
    napi_create_object(env, &o);
    napi_create_int64(env, (int64_t)c->summary.pushed, &v);
    napi_set_named_property(env, o, "pushed", v);
    napi_create_int64(env, (int64_t)c->summary.pulled, &v);
    napi_set_named_property(env, o, "pulled", v);
    napi_create_int64(env, (int64_t)c->summary.photos_uploaded, &v);
    napi_set_named_property(env, o, "photosUploaded", v);
    return o;
}
static napi_value Sync(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1] = {NULL};
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    call *c = new_call(env);
    if (!c) return NULL;
    c->run = run_sync;
    c->result = result_sync;
    return start(env, c, argv[0], "gridsync.sync");
}

static napi_value Init(napi_env env, napi_value exports) {
    napi_property_descriptor props[] = {
        {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
        {"reportCase", NULL, ReportCase, NULL, NULL, NULL, napi_default, NULL},
        {"sync", NULL, Sync, NULL, NULL, NULL, napi_default, NULL},
    };
    napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
    return exports;
}

static napi_module gridsync_module = {
    .nm_version = 1,
    .nm_flags = 0,
    .nm_filename = NULL,
    .nm_register_func = Init,
    .nm_modname = "gridsync_napi",   /* must match libgridsync_napi.so */
    .nm_priv = NULL,
};

__attribute__((constructor)) static void register_gridsync_module(void) {
    napi_module_register(&gridsync_module);
}
