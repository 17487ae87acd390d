/* no_descriptor.c - fixture: a shared object that exports no descriptor. */
#include <sluice/handler.h>

SL_PLUGIN_EXPORT int not_a_plugin(void);
SL_PLUGIN_EXPORT int not_a_plugin(void)
{
    return 42;
}
