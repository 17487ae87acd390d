/* test_loader.c - unit tests for the plugin loader (core/loader.c), against
 * the real fixture shared objects in FIXTURE_PLUGIN_DIR: opening a good
 * plugin (once), every refusal with a message that names the module, file,
 * symbol or version and says what to do, handler lookup, binding pipeline
 * steps, and init running exactly once (also under concurrent callers).
 * ABI negotiation: the ABI 1 fixture (ok.so, built from the frozen ABI 1
 * header) loads and runs in this host forever, a descriptor larger than
 * this host's (newer.so) loads, and an ABI 2 plugin's declared config keys
 * are checked at bind time and its instance made once per step, with every
 * field of the read-only context filled in.
 * loader_free must leave nothing behind (run under ASan/LSan). */
#include "loader.h"

#include "clock.h"
#include "config.h"
#include "confmap.h"
#include "executor.h"
#include "host.h"
#include "pipeline.h"
#include "test.h"
#include "testutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;

static char *fixture(const char *name)
{
    return tu_path(FIXTURE_PLUGIN_DIR, "%s", name);
}

/* Copy src to dir/name with mode. Returns 0 or -1. */
static int copy_file(const char *src, const char *dir, const char *name, mode_t mode)
{
    FILE *in = fopen(src, "rb");
    char *dst = tu_path(dir, "%s", name);
    FILE *out = dst ? fopen(dst, "wb") : NULL;
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    if (rc == 0 && chmod(dst, mode) < 0)
        rc = -1;
    free(dst);
    return rc;
}

/* A loader over the given folders (NULL-terminated). */
static struct loader *new_loader(const char *first, ...)
{
    char *v[8] = {0};
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *f = first; f && n < 8; f = va_arg(ap, const char *))
        v[n++] = (char *)f;
    va_end(ap);
    struct strv folders = {v, n};
    struct loader *l = NULL;
    struct err e = {""};
    int rc = loader_new(&folders, &l, &e);
    CHECK(rc == 0);
    CHECK(l != NULL);
    if (rc != 0)
        fprintf(stderr, "loader_new: %s\n", e.msg);
    return l;
}

static void test_open_ok(void)
{
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, NULL);
    struct plugin *p = NULL, *again = NULL;
    struct err e = {""};
    CHECK(loader_open(l, "ok", &p, &e) == 0);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "loader_open ok: %s\n", e.msg);
        loader_free(&l);
        return;
    }
    char *path = fixture("ok.so");
    CHECK_STR(p->name, "ok");
    CHECK_STR(p->path, path);
    CHECK(p->dl != NULL);
    CHECK(p->desc && p->desc->abi_version == 1); /* ok.so is the ABI 1 fixture */
    CHECK(p->abi == 1 && p->host == &host_table_v1);
    CHECK_STR(p->desc ? p->desc->version : NULL, "test");
    CHECK(!p->init.done);   /* init is lazy */
    char version[64];
    loader_file_version(path, version, sizeof version);
    CHECK_STR(p->version, version);
    CHECK(strlen(version) > 5 && strcmp(version, "missing") != 0);
    loader_file_version("/nonexistent/sluice-ut.so", version, sizeof version);
    CHECK_STR(version, "missing");

    /* opened once: the same plugin again */
    CHECK(loader_open(l, "ok", &again, &e) == 0);
    CHECK(again == p);
    CHECK(loader_open_file(l, "ok", path, &again, &e) == 0);
    CHECK(again == p);

    /* handlers */
    sl_handler_fn info = loader_find(p, "info", &e);
    CHECK(info != NULL);
    CHECK(loader_find(p, "silent", &e) != NULL);
    CHECK(loader_find(p, "silent", &e) != info);
    snprintf(e.msg, sizeof e.msg, "(untouched)");
    CHECK(loader_find(p, "nope", &e) == NULL);
    char want[4600];
    snprintf(want, sizeof want, "plugin \"ok\" (%s) has no handler \"nope\"; it has: info, silent",
             path);
    CHECK_STR(e.msg, want);

    /* init exactly once: the first call runs it and says how long it took */
    double ms = -2;
    CHECK(plugin_ensure_init(p, &ms, &e) == 0);
    CHECK(ms >= 0);
    CHECK(p->init.done);
    CHECK(p->state != NULL && *(int *)p->state == 1); /* ok's init counts its calls */
    ms = -2;
    CHECK(plugin_ensure_init(p, &ms, &e) == 0);
    CHECK(ms == -1);
    ms = -2;
    CHECK(plugin_ensure_init(p, &ms, &e) == 0);
    CHECK(ms == -1);
    CHECK(p->state != NULL && *(int *)p->state == 1);
    free(path);
    loader_free(&l);
    CHECK(l == NULL);
    loader_free(&l); /* NULL is fine */
}

struct init_race {
    struct plugin *p;
    double ms;
    int rc;
};

static void *race_init(void *arg)
{
    struct init_race *r = arg;
    struct err e;
    r->rc = plugin_ensure_init(r->p, &r->ms, &e);
    return NULL;
}

/* Many workers asking at once still run init once, and only one of them is
 * told it paid for the cold start. */
static void test_init_concurrent(void)
{
    /* a private copy of ok.so, so its init counter starts at zero */
    char *dir = tu_path(tmp, "race");
    CHECK(mkdir(dir, 0755) == 0);
    char *src = fixture("ok.so");
    CHECK(copy_file(src, dir, "ok.so", 0755) == 0);
    struct loader *l = new_loader(dir, NULL);
    struct plugin *p = NULL;
    struct err e = {""};
    CHECK(loader_open(l, "ok", &p, &e) == 0);
    if (p) {
        enum { N = 8 };
        struct init_race r[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
            r[i] = (struct init_race){p, -2, -2};
            CHECK(pthread_create(&t[i], NULL, race_init, &r[i]) == 0);
        }
        int paid = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            CHECK(r[i].rc == 0);
            CHECK(r[i].ms >= 0 || r[i].ms == -1);
            paid += r[i].ms >= 0;
        }
        CHECK(paid == 1);
        CHECK(p->state != NULL && *(int *)p->state == 1);
    } else {
        fprintf(stderr, "loader_open copy: %s\n", e.msg);
    }
    loader_free(&l);
    free(src);
    free(dir);
}

static void test_bad_init(void)
{
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, NULL);
    struct plugin *p = NULL;
    struct err e = {""};
    CHECK(loader_open(l, "bad_init", &p, &e) == 0);
    if (p) {
        struct step s = {.name = "bad", .config_json = "{}", .plugin = p};
        struct diag d = {0};
        CHECK(loader_instance(l, &s, 0, "bad.json", &d) == 0);
        CHECK(s.instance != NULL);
        double ms = -2;
        CHECK(instance_ensure(s.instance, &ms, &e) == -1);
        CHECK(ms >= 0); /* it did run */
        CHECK_STR(e.msg, "plugin \"bad_init\" failed to create its instance: cannot reach the "
                         "license server");
        /* not run again: the same answer, no cold start */
        snprintf(e.msg, sizeof e.msg, "(untouched)");
        ms = -2;
        CHECK(instance_ensure(s.instance, &ms, &e) == -1);
        CHECK(ms == -1);
        CHECK_STR(e.msg, "plugin \"bad_init\" failed to create its instance: cannot reach the "
                         "license server");
        diag_free(&d);
    }
    loader_free(&l); /* no destroy for a failed create */
}

static void test_refusals(void)
{
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, "/nonexistent/sluice-ut", NULL);
    struct plugin *p = (struct plugin *)&p;
    struct err e = {""};
    char want[4600];

    /* missing: names the module and the folders searched, says what to do */
    CHECK(loader_open(l, "nope", &p, &e) == -1);
    snprintf(want, sizeof want, "plugin \"nope\" not found: no nope.so in plugin_path (%s, "
             "/nonexistent/sluice-ut); build it, or add its folder to \"plugin_path\" in "
             "sluice.json", FIXTURE_PLUGIN_DIR);
    CHECK_STR(e.msg, want);

    /* no descriptor: names the symbol and the file */
    char *path = fixture("no_descriptor.so");
    CHECK(loader_open(l, "no_descriptor", &p, &e) == -1);
    snprintf(want, sizeof want, "no entry point [sluice_plugin] in shared library [%s]", path);
    CHECK_CONTAINS(e.msg, want);
    free(path);

    /* another ABI: both versions, and "rebuild" */
    path = fixture("wrong_abi.so");
    CHECK(loader_open(l, "wrong_abi", &p, &e) == -1);
    snprintf(want, sizeof want, "plugin %s was built for handler ABI version %u, this sluice "
             "speaks versions 1 to %u: rebuild", path, SL_ABI_VERSION + 1, SL_ABI_VERSION);
    CHECK_CONTAINS(e.msg, want);
    free(path);

    /* failures are not cached as plugins: asking again gives the same answer */
    CHECK(loader_open(l, "wrong_abi", &p, &e) == -1);
    CHECK_CONTAINS(e.msg, "rebuild");

    /* not a shared object at all */
    char *dir = tu_path(tmp, "junk");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(tu_write_in(dir, "junk.so", "this is not ELF") == 0);
    struct loader *lj = new_loader(dir, NULL);
    CHECK(loader_open(lj, "junk", &p, &e) == -1);
    char *junk = tu_path(dir, "junk.so");
    snprintf(want, sizeof want, "cannot load plugin %s: ", junk);
    CHECK_CONTAINS(e.msg, want);
    free(junk);
    loader_free(&lj);
    free(dir);
    loader_free(&l);
}

/* MODULE.so or libMODULE.so; the descriptor's name must match the file. */
static void test_file_names(void)
{
    char *src = fixture("ok.so");
    char *dir = tu_path(tmp, "names");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(copy_file(src, dir, "libok.so", 0755) == 0);
    CHECK(copy_file(src, dir, "other.so", 0755) == 0);
    struct loader *l = new_loader(dir, NULL);
    struct plugin *p = NULL;
    struct err e = {""};
    CHECK(loader_open(l, "ok", &p, &e) == 0);
    char *lib = tu_path(dir, "libok.so");
    CHECK_STR(p ? p->path : e.msg, lib);
    free(lib);
    char *other = tu_path(dir, "other.so");
    char want[4600];
    CHECK(loader_open(l, "other", &p, &e) == -1);
    snprintf(want, sizeof want, "plugin %s calls itself \"ok\", but was loaded as \"other\"",
             other);
    CHECK_CONTAINS(e.msg, want);
    free(other);
    loader_free(&l);

    /* code other users could replace is refused */
    char *open_dir = tu_path(tmp, "worldwritable");
    CHECK(mkdir(open_dir, 0755) == 0);
    CHECK(chmod(open_dir, 0777) == 0);
    CHECK(copy_file(src, open_dir, "ok.so", 0755) == 0);
    l = new_loader(open_dir, NULL);
    CHECK(loader_open(l, "ok", &p, &e) == -1);
    CHECK_CONTAINS(e.msg, "writable by other users");
    CHECK_CONTAINS(e.msg, open_dir);
    loader_free(&l);
    chmod(open_dir, 0755);
    CHECK(copy_file(src, open_dir, "ok.so", 0757) == 0);
    l = new_loader(open_dir, NULL);
    CHECK(loader_open(l, "ok", &p, &e) == -1);
    CHECK_CONTAINS(e.msg, "the file is writable by other users");
    loader_free(&l);
    free(open_dir);
    free(dir);
    free(src);
}

static void test_bind_pipeline(void)
{
    struct config cfg = {.file = "sluice.json", .base_dir = tmp, .workers = 2};
    char *file = tu_path(tmp, "bind.json");
    CHECK(tu_write(file, "{\"name\": \"bind\", \"isolation\": \"thread\", \"steps\": ["
                         "{\"handler\": \"ok.info\"},"
                         "{\"name\": \"second\", \"handler\": \"ok.nope\"},"
                         "{\"handler\": \"missing_mod.handler\"},"
                         "{\"name\": \"abi\", \"handler\": \"wrong_abi.handler\"},"
                         "{\"handler\": \"ok.silent\"}]}") == 0);
    struct pipeline *pl = NULL;
    struct diag d = {0};
    CHECK(pipeline_load(file, &cfg, &pl, &d) == 0);
    if (!pl) {
        tu_diag_dump("bind pipeline", &d);
        diag_free(&d);
        free(file);
        return;
    }
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, NULL);
    CHECK(loader_bind_pipeline(l, pl, &d) == -1);
    CHECK(d.errors == 3);
    char want[4600];
    snprintf(want, sizeof want, "%s: steps[1] (second): plugin \"ok\" (", file);
    CHECK_CONTAINS(tu_diag_find(&d, "steps[1]"), want);
    CHECK_CONTAINS(tu_diag_find(&d, "steps[1]"), "has no handler \"nope\"; it has: info, silent");
    snprintf(want, sizeof want, "%s: steps[2] (handler): plugin \"missing_mod\" not found", file);
    CHECK_CONTAINS(tu_diag_find(&d, "steps[2]"), want);
    snprintf(want, sizeof want, "%s: steps[3] (abi): plugin ", file);
    CHECK_CONTAINS(tu_diag_find(&d, "steps[3]"), want);
    CHECK_CONTAINS(tu_diag_find(&d, "steps[3]"), "rebuild");
    CHECK(tu_diag_find(&d, "steps[0]") == NULL);
    CHECK(tu_diag_find(&d, "steps[4]") == NULL);
    /* the good steps are bound, to the one plugin */
    CHECK(pl->steps[0].plugin != NULL && pl->steps[0].fn != NULL);
    CHECK(pl->steps[4].plugin == pl->steps[0].plugin);
    CHECK(pl->steps[4].fn != NULL && pl->steps[4].fn != pl->steps[0].fn);
    CHECK(pl->steps[1].fn == NULL);
    struct err e;
    CHECK(pl->steps[0].fn == (void *)loader_find(pl->steps[0].plugin, "info", &e));
    CHECK(step_file(&pl->steps[0]) == pl->steps[0].plugin->path);
    diag_free(&d);

    /* a set binds each pipeline and reports them all */
    struct pipeline_set set = {.v = &pl, .n = 1};
    CHECK(loader_bind_set(l, &set, &d) == -1);
    CHECK(d.errors == 3);
    diag_free(&d);
    loader_free(&l);
    pipeline_free(&pl);
    free(file);
}

/* A descriptor larger than this host's (a plugin built against a newer
 * header that relies on ABI 2 only) loads; its tail is never read. */
static void test_newer_plugin(void)
{
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, NULL);
    struct plugin *p = NULL;
    struct err e = {""};
    CHECK(loader_open(l, "newer", &p, &e) == 0);
    if (!p)
        fprintf(stderr, "newer: %s\n", e.msg);
    CHECK(p && p->abi == 2 && p->desc->size > sizeof(sl_plugin));
    CHECK(p && p->host == &host_table);
    loader_free(&l);
}

static void log_nowhere(void *arg, const sl_context *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
    ++*(int *)arg;
}

/* One attempt of step i of pl on this thread; the body, owned, or NULL. */
static char *call_step(struct pipeline *pl, size_t i, int number, int *logged)
{
    struct attempt a = {.pipeline = pl, .step = &pl->steps[i], .request_id = "req-1",
                        .event_id = "ev-1", .source = "directory:in", .event = "{}",
                        .event_len = 2, .number = number};
    executor_call(&a, clock_mono_ns() + 5000 * 1000000LL, log_nowhere, logged);
    char *body = a.status == INV_OK && a.body ? strdup(a.body) : NULL;
    if (!body)
        fprintf(stderr, "step %zu: %s: %s\n", i, a.error_type ? a.error_type : "?",
                a.error ? a.error : "?");
    attempt_release(&a);
    return body;
}

/* An ABI 2 plugin: declared keys checked at bind time (as pipeline keys
 * are), defaults filled in, one instance per step made once, the context
 * complete; the ABI 1 fixture runs beside it in the same host. */
static void test_abi2_steps(void)
{
    struct config cfg = {.file = "sluice.json", .base_dir = tmp, .workers = 2};
    char *bad = tu_path(tmp, "v2bad.json");
    CHECK(tu_write(bad, "{\"name\": \"v2bad\", \"isolation\": \"thread\", \"steps\": ["
                        "{\"name\": \"a\", \"handler\": \"v2.info\", \"config\": "
                        "{\"greting\": \"hi\"}},"
                        "{\"name\": \"b\", \"handler\": \"v2.info\", \"config\": "
                        "{\"greeting\": 5}},"
                        "{\"name\": \"c\", \"handler\": \"v2.info\", \"config\": {\"greeting\": \"x\", "
                        "\"limit\": \"high\"}}]}") == 0);
    struct pipeline *pl = NULL;
    struct diag d = {0};
    CHECK(pipeline_load(bad, &cfg, &pl, &d) == 0);
    struct loader *l = new_loader(FIXTURE_PLUGIN_DIR, NULL);
    if (pl) {
        CHECK(loader_bind_pipeline(l, pl, &d) == -1);
        char want[4600];
        snprintf(want, sizeof want, "%s: steps[0] (a).config: unknown key \"greting\" (did "
                 "you mean \"greeting\"?)", bad);
        CHECK_STR(tu_diag_find(&d, "greting"), want);
        snprintf(want, sizeof want, "%s: steps[0] (a).config: missing required key "
                 "\"greeting\": what to greet with", bad);
        CHECK_STR(tu_diag_find(&d, "missing required"), want);
        CHECK_CONTAINS(tu_diag_find(&d, "steps[1]"), "steps[1] (b).config.greeting: "
                       "expected a string, got a number");
        CHECK_CONTAINS(tu_diag_find(&d, "steps[2]"), "steps[2] (c).config.limit: "
                       "expected a number, got a string");
        CHECK(d.errors == 4);
        pipeline_free(&pl);
    }
    diag_free(&d);

    char *good = tu_path(tmp, "v2good.json");
    CHECK(tu_write(good, "{\"name\": \"v2good\", \"isolation\": \"thread\", \"steps\": ["
                         "{\"name\": \"a\", \"handler\": \"v2.info\", \"config\": "
                         "{\"greeting\": \"hello\", \"extra\": [1]}},"
                         "{\"name\": \"b\", \"handler\": \"v2.flaky\", \"config\": "
                         "{\"greeting\": \"bye\", \"limit\": 9}},"
                         "{\"name\": \"old\", \"handler\": \"ok.info\", \"config\": "
                         "{\"any\": \"thing\"}}]}") == 0);
    CHECK(pipeline_load(good, &cfg, &pl, &d) == 0);
    if (pl) {
        CHECK(loader_bind_pipeline(l, pl, &d) == 0);
        tu_diag_dump("v2good", &d);
        int logged = 0;
        char *one = call_step(pl, 0, 1, &logged);
        char *two = call_step(pl, 0, 1, &logged);
        char *flaky1 = call_step(pl, 1, 1, &logged); /* fails: attempt 1 */
        char *flaky2 = call_step(pl, 1, 2, &logged);
        char *old = call_step(pl, 2, 1, &logged);
        CHECK(one && two && !flaky1 && flaky2 && old);
        /* the instance is the step's: made once (serial 1), called twice */
        CHECK_CONTAINS(one, "\"greeting\":\"hello\",\"limit\":2.5,\"serial\":1,\"calls\":1");
        CHECK_CONTAINS(two, "\"serial\":1,\"calls\":2");
        CHECK_CONTAINS(one, "\"request_id\":\"req-1\",\"event_id\":\"ev-1\",\"source\":"
                       "\"directory:in\",\"function\":\"v2.info\",\"pipeline\":\"v2good\","
                       "\"step\":\"a\",\"attempt\":1");
        CHECK_CONTAINS(one, "\"memory_limit_mb\":0"); /* thread isolation: none */
        CHECK_CONTAINS(one, "\"config\":{\"greeting\":\"hello\",\"extra\":[1],\"limit\":2.5}");
        /* another step, another instance (serial 2), with its own config */
        CHECK_CONTAINS(flaky2, "\"greeting\":\"bye\",\"limit\":9,\"serial\":2");
        CHECK_CONTAINS(flaky2, "\"attempt\":2");
        /* the deadline is on the wall clock, a few seconds ahead */
        const char *dl = one ? strstr(one, "\"deadline_ms\":") : NULL;
        long long deadline = dl ? atoll(dl + 14) : 0;
        CHECK(deadline > clock_wall_ms() && deadline < clock_wall_ms() + 10000);
        /* the ABI 1 plugin, untouched by any of it */
        CHECK_CONTAINS(old, "\"request_id\":\"req-1\",\"config\":{\"any\":\"thing\"}");
        CHECK(logged >= 3); /* v2.info logs with logf, ok.info with log */
        free(one);
        free(two);
        free(flaky1);
        free(flaky2);
        free(old);
        pipeline_free(&pl);
    }
    diag_free(&d);
    loader_free(&l); /* destroys both instances (checked by LeakSanitizer) */
    free(bad);
    free(good);
}

/* A file's id for hot reload: stable while the file is, different once it
 * is replaced, "missing" when gone; the version text is the id's text. */
static void test_file_id(void)
{
    char *path = tu_path(tmp, "id.so");
    struct loader_file_id a, b;
    char text[64], version[64];
    loader_file_id(path, &a);
    CHECK(!a.present);
    loader_file_id_text(&a, text, sizeof text);
    CHECK_STR(text, "missing");
    CHECK(tu_write(path, "one") == 0);
    loader_file_id(path, &a);
    loader_file_id(path, &b);
    CHECK(a.present && loader_file_id_equal(&a, &b));
    loader_file_id_text(&a, text, sizeof text);
    loader_file_version(path, version, sizeof version);
    CHECK_STR(text, version);
    CHECK(tu_write(path, "a longer one") == 0);
    loader_file_id(path, &b);
    CHECK(!loader_file_id_equal(&a, &b));
    free(path);
}

int main(void)
{
    tmp = tu_mkdtemp("loader");
    test_open_ok();         /* first: ok.so's init counter starts at zero */
    test_init_concurrent();
    test_bad_init();
    test_refusals();
    test_file_names();
    test_bind_pipeline();
    test_file_id();
    test_newer_plugin();
    test_abi2_steps();
    tu_rm_rf(tmp);
    free(tmp);
    return test_summary();
}
