/*
 * criu-log.h: logging for plugins, source-compatible with CRIU's public
 * criu-log.h (same includes, levels, macros and declarations).
 *
 * Messages go into refcr's own log (the -o file or stderr) and are shown
 * when their level is <= refcr's -v level.
 *
 * What the plugin host provides (refcr/_plugins, see native/plugins.c):
 * print_on_level, vprint_on_level, log_get_loglevel, log_set_loglevel
 * (the level of the plugin's own messages, not refcr's) and pr_quelled.
 * The rest of CRIU's public log header drives CRIU's own log file (opening,
 * switching and closing it, the pidfile, the early-log buffer); a plugin has
 * no business calling them and refcr does not provide them.  They are
 * declared under their CRIU names but bound to a symbol that says so, e.g.
 * log_init -> refcr_does_not_provide__log_init, so a plugin that calls one
 * fails to load (RTLD_NOW, as `refcr plugin-check` loads, or a link with
 * -Wl,-z,defs) with "undefined symbol: refcr_does_not_provide__log_init"
 * instead of reaching a function that is not there.
 */
#ifndef __CRIU_LOG_H__
#define __CRIU_LOG_H__

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#define LOG_UNSET	(-1)
#define LOG_MSG		(0) /* always shown */
#define LOG_ERROR	(1) /* errors only */
#define LOG_WARN	(2) /* something is odd, carrying on */
#define LOG_INFO	(3) /* what is being done */
#define LOG_DEBUG	(4) /* everything */

#define DEFAULT_LOGLEVEL	LOG_WARN
#define DEFAULT_LOG_FILENAME	"criu.log"

/* Provided by refcr. */
extern void print_on_level(unsigned int loglevel, const char *format, ...)
	__attribute__((__format__(__printf__, 2, 3)));
extern void vprint_on_level(unsigned int loglevel, const char *format, va_list params);
extern unsigned int log_get_loglevel(void);
extern void log_set_loglevel(unsigned int loglevel);

/* CRIU's log-file machinery: declared, not provided (see above). */
#define __REFCR_NOT_PROVIDED(name)	__asm__("refcr_does_not_provide__" #name)
struct timeval;
extern int log_init(const char *output) __REFCR_NOT_PROVIDED(log_init);
extern void log_fini(void) __REFCR_NOT_PROVIDED(log_fini);
extern int log_init_by_pid(pid_t pid) __REFCR_NOT_PROVIDED(log_init_by_pid);
extern void log_closedir(void) __REFCR_NOT_PROVIDED(log_closedir);
extern int log_keep_err(void) __REFCR_NOT_PROVIDED(log_keep_err);
extern char *log_first_err(void) __REFCR_NOT_PROVIDED(log_first_err);
extern void log_set_fd(int fd) __REFCR_NOT_PROVIDED(log_set_fd);
extern int log_get_fd(void) __REFCR_NOT_PROVIDED(log_get_fd);
extern void log_get_logstart(struct timeval *) __REFCR_NOT_PROVIDED(log_get_logstart);
extern int write_pidfile(int pid) __REFCR_NOT_PROVIDED(write_pidfile);
extern void flush_early_log_buffer(int fd) __REFCR_NOT_PROVIDED(flush_early_log_buffer);

/* Nonzero when a message of this level would not be shown. */
static inline int pr_quelled(unsigned int loglevel)
{
	return log_get_loglevel() < loglevel && loglevel != LOG_MSG;
}

#ifndef LOG_PREFIX
#define LOG_PREFIX
#endif

/* print_on_level the first time this line is reached, never again. */
#define print_once(loglevel, fmt, ...)						\
	do {									\
		static bool __printed;						\
		if (!__printed) {						\
			print_on_level(loglevel, fmt, ##__VA_ARGS__);		\
			__printed = 1;						\
		}								\
	} while (0)

#define pr_msg(fmt, ...)	print_on_level(LOG_MSG, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)	print_on_level(LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)	print_on_level(LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)	print_on_level(LOG_WARN, "Warn  (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_err(fmt, ...)	print_on_level(LOG_ERROR, "Error (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_warn_once(fmt, ...)	print_once(LOG_WARN, "Warn  (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_err_once(fmt, ...)	print_once(LOG_ERROR, "Error (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)

/* pr_err / pr_warn with ": <strerror(errno)>" appended; fmt has no trailing newline. */
#define pr_perror(fmt, ...)	pr_err(fmt ": %s\n", ##__VA_ARGS__, strerror(errno))
#define pr_pwarn(fmt, ...)	pr_warn(fmt ": %s\n", ##__VA_ARGS__, strerror(errno))

#endif /* __CRIU_LOG_H__ */
