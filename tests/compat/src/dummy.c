/*
 * The smallest v2 plugin: CR_PLUGIN_REGISTER_DUMMY (cr_plugin_dummy_init and
 * cr_plugin_dummy_exit) and one hook that declines, logging through
 * vprint_on_level and asking for a level with log_set_loglevel.
 */
#include <errno.h>
#include <stdarg.h>

#include "criu-plugin.h"
#include "criu-log.h"

static void say(unsigned int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_on_level(level, fmt, ap);
	va_end(ap);
}

static int dummy_dump_ext_link(int index, int type, char *kind)
{
	say(LOG_DEBUG, "dummy: link %d (type %d, %s) is not mine\n", index, type, kind);
	return -ENOTSUP;
}

static void __attribute__((constructor)) dummy_quiet(void)
{
	log_set_loglevel(log_get_loglevel());
	(void)cr_plugin_dummy_init;
	(void)cr_plugin_dummy_exit;
}

CR_PLUGIN_REGISTER_DUMMY("dummy")
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_EXT_LINK, dummy_dump_ext_link)
