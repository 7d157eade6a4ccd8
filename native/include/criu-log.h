/*
 * criu-log.h: logging for plugins, source-compatible with CRIU's.
 *
 * Messages go into refcr's own log (the -o file or stderr) and are shown
 * when their level is <= refcr's -v level.
 */
#ifndef __CRIU_LOG_H__
#define __CRIU_LOG_H__

#include <errno.h>
#include <string.h>

#define LOG_UNSET	(-1)
#define LOG_MSG		(0) /* always shown */
#define LOG_ERROR	(1)
#define LOG_WARN	(2)
#define LOG_INFO	(3)
#define LOG_DEBUG	(4)

#define DEFAULT_LOGLEVEL LOG_WARN

/* Provided by refcr. */
extern void print_on_level(unsigned int loglevel, const char *format, ...)
	__attribute__((__format__(__printf__, 2, 3)));
extern int log_get_loglevel(void);

#ifndef LOG_PREFIX
#define LOG_PREFIX
#endif

#define pr_msg(fmt, ...)	print_on_level(LOG_MSG, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)	print_on_level(LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)	print_on_level(LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)	print_on_level(LOG_WARN, "Warn  (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_err(fmt, ...)	print_on_level(LOG_ERROR, "Error (%s:%d): " LOG_PREFIX fmt, __FILE__, __LINE__, ##__VA_ARGS__)

/* pr_err with ": <strerror(errno)>" appended; fmt has no trailing newline. */
#define pr_perror(fmt, ...)	pr_err(fmt ": %s\n", ##__VA_ARGS__, strerror(errno))

#endif /* __CRIU_LOG_H__ */
