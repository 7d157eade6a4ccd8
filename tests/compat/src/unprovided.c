/*
 * A plugin that calls the parts of CRIU's public log header that drive CRIU's
 * own log file.  It builds; refcr refuses to load it, naming the first such
 * function (undefined symbol refcr_does_not_provide__NAME).
 */
#include <errno.h>
#include <sys/time.h>

#include "criu-plugin.h"
#include "criu-log.h"

static int greedy_init(int stage)
{
	struct timeval tv;
	char *first;

	if (log_init(DEFAULT_LOG_FILENAME) || log_init_by_pid(0) || log_keep_err())
		return -1;
	first = log_first_err();
	log_set_fd(log_get_fd());
	log_get_logstart(&tv);
	flush_early_log_buffer(2);
	log_closedir();
	log_fini();
	return write_pidfile(0) + (first != 0);
}

CR_PLUGIN_REGISTER("unprovided", greedy_init, NULL)
