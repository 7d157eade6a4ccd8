/*
 * unix-sk: stream connections to a subscription broker (the D-Bus case).
 *
 * A broker is a daemon outside the dumped tree that keeps state per client
 * connection: here, the topics the client subscribed to.  Reconnecting the
 * socket is not enough after a restore (the broker forgot the old client when
 * its connection closed); the subscriptions must be made again.
 *
 * Which sockets: a SOCK_STREAM unix socket whose peer is bound to an absolute
 * path ending in ".broker" (the broker's listening socket).  Anything else:
 * -ENOTSUP, so the next plugin or refcr's own options decide.
 *
 * The broker's protocol (one line each way; zdtm/peers/broker.c):
 *   SUB <topic>             -> OK SUB <topic>
 *   PUB <topic> <payload>   -> OK PUB <deliveries>, and EVENT <topic> <payload>
 *                              to every subscriber of <topic>
 *   LIST <inode>            -> SUBS [<topic> ...] of the client whose socket
 *                              has that inode, or NONE
 *   RESUB [<topic> ...]     -> OK RESUB <n>: subscribes this connection to all
 *                              of them at once
 *
 * DUMP_UNIX_SK(fd, id) does not touch the application's stream: it asks over
 * a connection of its own (LIST with the inode of the client's socket) and
 * writes the broker's path and the topics into "unix-broker.<id>" in the
 * image directory, one per line.
 *
 * RESTORE_UNIX_SK(id) reads that file (none: not ours, -ENOTSUP), connects
 * to the broker and sends one RESUB with every topic.  RESUB is one step for
 * the broker, and it answers before any event can follow on the new
 * connection, so reading exactly the answer line leaves the stream to the
 * application as it would be for a client that had just subscribed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "criu-plugin.h"

#define LOG_PREFIX "unix-sk: "
#include "criu-log.h"

#define BROKER_SUFFIX	".broker"
#define IMG_FMT		"unix-broker.%d"
#define LINE_MAX_LEN	4096
#define TOPIC_MAX_LEN	63
#define TIMEOUT_SEC	5

static int usk_init(int stage)
{
	pr_debug("init(stage %d)\n", stage);
	return 0;
}

static void usk_exit(int stage, int ret)
{
	pr_debug("exit(stage %d, ret %d)\n", stage, ret);
}

CR_PLUGIN_REGISTER("unix-sk", usk_init, usk_exit)

static int is_broker_path(const char *path)
{
	size_t n = strlen(path), sl = strlen(BROKER_SUFFIX);

	return path[0] == '/' && n > sl && n < sizeof(((struct sockaddr_un *)0)->sun_path) &&
	       !strcmp(path + n - sl, BROKER_SUFFIX);
}

/* A topic: 1..63 of [A-Za-z0-9._-] (what the broker accepts, checked on images too). */
static int is_topic(const char *t)
{
	size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && n <= TOPIC_MAX_LEN && t[n] == '\0';
}

/* The broker's path if fd is a stream socket connected to one, else -ENOTSUP. */
static int broker_of(int fd, char *path, size_t len)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	int type;
	socklen_t tl = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM)
		return -ENOTSUP;
	memset(&sa, 0, sizeof(sa));
	if (getpeername(fd, (struct sockaddr *)&sa, &sl) || sa.sun_family != AF_UNIX ||
	    sl <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
		return -ENOTSUP;
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	if (!is_broker_path(sa.sun_path) || strlen(sa.sun_path) >= len)
		return -ENOTSUP;
	strcpy(path, sa.sun_path);
	return 0;
}

static int set_timeout(int sk, int sec)
{
	struct timeval tv = { .tv_sec = sec };

	if (setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

/* A new connection to the broker at path (with a timeout: a stuck broker must not hang refcr). */
static int connect_broker(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sk, ret;

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	ret = set_timeout(sk, TIMEOUT_SEC);
	if (!ret && connect(sk, (struct sockaddr *)&sa, sizeof(sa)))
		ret = -errno;
	if (ret) {
		pr_err("cannot connect to the broker %s: %s\n", path, strerror(-ret));
		close(sk);
		return ret;
	}
	return sk;
}

/* Send one request line, read exactly one answer line (byte by byte: nothing after it is taken). */
static int request(int sk, const char *req, char *ans, size_t len)
{
	size_t n = strlen(req), off = 0;
	ssize_t r;

	while (off < n) {
		r = send(sk, req + off, n - off, MSG_NOSIGNAL);
		if (r < 0)
			return -errno;
		off += (size_t)r;
	}
	for (off = 0; off + 1 < len;) {
		r = recv(sk, ans + off, 1, 0);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		if (ans[off] == '\n') {
			ans[off] = '\0';
			return 0;
		}
		off++;
	}
	return -EMSGSIZE;
}

static int dump_unix_sk(int fd, int id)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)], req[64], ans[LINE_MAX_LEN], name[64];
	char *save = NULL, *t;
	struct stat st;
	FILE *f;
	int sk, img, ret;

	if (broker_of(fd, path, sizeof(path)))
		return -ENOTSUP;
	if (fstat(fd, &st))
		return -errno;
	sk = connect_broker(path);
	if (sk < 0)
		return sk;
	snprintf(req, sizeof(req), "LIST %llu\n", (unsigned long long)st.st_ino);
	ret = request(sk, req, ans, sizeof(ans));
	close(sk);
	if (ret) {
		pr_err("broker %s: LIST: %s\n", path, strerror(-ret));
		return ret;
	}
	if (strncmp(ans, "SUBS", 4) || (ans[4] != '\0' && ans[4] != ' ')) {
		pr_err("broker %s does not know socket %llu (answer: %.80s)\n", path,
		       (unsigned long long)st.st_ino, ans);
		return -ENOENT;
	}
	snprintf(name, sizeof(name), IMG_FMT, id);
	img = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img < 0) {
		ret = -errno;
		pr_perror("cannot create %s", name);
		return ret;
	}
	f = fdopen(img, "w");
	if (!f) {
		ret = -errno;
		close(img);
		return ret;
	}
	fprintf(f, "%s\n", path);
	for (t = strtok_r(ans + 4, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (!is_topic(t)) {
			pr_err("broker %s sent a bad topic %.80s\n", path, t);
			fclose(f);
			return -EINVAL;
		}
		fprintf(f, "%s\n", t);
	}
	if (fclose(f)) {
		ret = -errno;
		pr_perror("cannot write %s", name);
		return ret;
	}
	pr_info("socket %d (inode %llu): broker %s, subscriptions:%s\n", id,
		(unsigned long long)st.st_ino, path, ans + 4);
	return 0;
}

static int restore_unix_sk(int id)
{
	char path[LINE_MAX_LEN], line[LINE_MAX_LEN], req[LINE_MAX_LEN], ans[LINE_MAX_LEN], name[64];
	size_t len;
	int img, sk, ret, n = 0;
	FILE *f;

	snprintf(name, sizeof(name), IMG_FMT, id);
	img = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC);
	if (img < 0)
		return errno == ENOENT ? -ENOTSUP : -errno;
	f = fdopen(img, "r");
	if (!f) {
		close(img);
		return -ENOMEM;
	}
	if (!fgets(path, sizeof(path), f) || !(len = strlen(path)) || path[len - 1] != '\n')
		goto bad;
	path[len - 1] = '\0';
	if (!is_broker_path(path))
		goto bad;
	strcpy(req, "RESUB");
	while (fgets(line, sizeof(line), f)) {
		len = strlen(line);
		if (!len || line[len - 1] != '\n')
			goto bad;
		line[len - 1] = '\0';
		if (!is_topic(line) || strlen(req) + len + 2 >= sizeof(req))
			goto bad;
		strcat(req, " ");
		strcat(req, line);
		n++;
	}
	fclose(f);
	strcat(req, "\n");

	sk = connect_broker(path);
	if (sk < 0)
		return sk;
	ret = request(sk, req, ans, sizeof(ans));
	snprintf(line, sizeof(line), "OK RESUB %d", n);
	if (!ret && strcmp(ans, line))
		ret = -EPROTO;
	if (!ret)
		ret = set_timeout(sk, 0);
	if (ret) {
		pr_err("broker %s: re-subscribing socket %d: %s\n", path, id, strerror(-ret));
		close(sk);
		return ret;
	}
	pr_info("socket %d: connected to %s again, %d subscription(s) made again\n", id, path, n);
	return sk;
bad:
	fclose(f);
	pr_err("%s: not a unix-sk image\n", name);
	return -EINVAL;
}

CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__DUMP_UNIX_SK, dump_unix_sk)
CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__RESTORE_UNIX_SK, restore_unix_sk)
