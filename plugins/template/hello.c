/* hello.c - a plugin template: copy this folder, rename, build it against
 * the installed sluice (CMakeLists.txt here, or
 * `cc -shared -fPIC $(pkg-config --cflags sluice) -o hello.so hello.c`).
 * The handler answers {"hello": NAME} for an event {"name": NAME}. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <string.h>

#include <sluice/handler.h>

/* The value of "name" in a flat JSON event, or "world": a real plugin would
 * use a JSON library; this one keeps the template free of dependencies. */
static void find_name(const char *json, size_t len, char *out, size_t cap)
{
    snprintf(out, cap, "world");
    const char *key = memmem(json, len, "\"name\"", 6);
    const char *q1 = key ? memchr(key + 6, '"', len - (size_t)(key + 6 - json)) : NULL;
    const char *q2 = q1 ? memchr(q1 + 1, '"', len - (size_t)(q1 + 1 - json)) : NULL;
    if (q2 && (size_t)(q2 - q1 - 1) < cap)
        snprintf(out, cap, "%.*s", (int)(q2 - q1 - 1), q1 + 1);
}

static int hello_handler(const sl_event *event, sl_context *ctx, sl_response *res)
{
    char name[128], body[192];
    find_name(event->json, event->len, name, sizeof name);
    int n = snprintf(body, sizeof body, "{\"hello\":\"%s\"}", name);
    return ctx->host->respond(res, 200, body, (size_t)n);
}

static const sl_handler_def handlers[] = {
    {"handler", hello_handler},
    {NULL, NULL},
};

SL_PLUGIN_EXPORT const sl_plugin sluice_plugin = {
    .abi_version = SL_ABI_VERSION,
    .size = sizeof(sl_plugin),
    .name = "hello",
    .version = "1.0",
    .handlers = handlers,
};
