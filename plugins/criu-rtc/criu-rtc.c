/*
 * criu-rtc: dumps and restores an open /dev/rtc (minor 0) with its periodic
 * interrupt rate.  Written in the old plugin style on purpose (functions
 * found by name, no CR_PLUGIN_DESC): refcr generates a descriptor for it.
 *
 *   dump:    an fd of /dev/rtc's device (same major, minor 0) -> RTC_IRQP_READ,
 *            rate and file status flags written as an RtcEntry (rtc.proto)
 *            into rtc.<id> in the image directory; any other fd -> -ENOTSUP.
 *   restore: open /dev/rtc with the saved access mode and O_NONBLOCK,
 *            RTC_IRQP_SET to the saved rate, RTC_PIE_ON, return the fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/rtc.h>

#include "criu-plugin.h"

#define LOG_PREFIX "criu-rtc: "
#include "criu-log.h"

#define RTC_DEV "/dev/rtc"
#define RTC_DEV0 "/dev/rtc0"
#define ENTRY_MAX 24

static size_t put_varint(uint64_t v, unsigned char *buf)
{
	size_t n = 0;

	do {
		buf[n] = v & 0x7f;
		v >>= 7;
		if (v)
			buf[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* RtcEntry { uint64 irqp = 1; uint32 flags = 2; }: each a tag, then a varint. */
static size_t rtc_entry_encode(uint64_t irqp, uint32_t flags, unsigned char *buf)
{
	size_t n = 0;

	buf[n++] = 0x08;
	n += put_varint(irqp, buf + n);
	buf[n++] = 0x10;
	n += put_varint(flags, buf + n);
	return n;
}

/*
 * 0, or -EINVAL when buf is not an RtcEntry.  Unknown varint fields are
 * skipped; a missing flags field (an image of the first version) reads as
 * O_RDONLY.
 */
static int rtc_entry_decode(const unsigned char *buf, size_t len, uint64_t *irqp, uint32_t *flags)
{
	size_t i = 0;

	*irqp = 0;
	*flags = O_RDONLY;
	while (i < len) {
		unsigned int tag = buf[i++];
		uint64_t v = 0;
		int shift = 0;

		if ((tag & 7) != 0) /* only varints exist in this message */
			return -EINVAL;
		do {
			if (i >= len || shift > 63)
				return -EINVAL;
			v |= (uint64_t)(buf[i] & 0x7f) << shift;
			shift += 7;
		} while (buf[i++] & 0x80);
		if ((tag >> 3) == 1)
			*irqp = v;
		else if ((tag >> 3) == 2)
			*flags = (uint32_t)v;
	}
	return 0;
}

/* Is st the rtc device (the one /dev/rtc or /dev/rtc0 is, minor 0)? */
static int is_rtc(const struct stat *st)
{
	struct stat dev;

	if (!S_ISCHR(st->st_mode) || minor(st->st_rdev) != 0)
		return 0;
	if (stat(RTC_DEV, &dev) && stat(RTC_DEV0, &dev))
		return 0;
	return S_ISCHR(dev.st_mode) && major(dev.st_rdev) == major(st->st_rdev);
}

int cr_plugin_init(void)
{
	pr_debug("loaded\n");
	return 0;
}

void cr_plugin_fini(void)
{
	pr_debug("done\n");
}

int cr_plugin_dump_file(int fd, int id)
{
	unsigned char buf[ENTRY_MAX];
	unsigned long irqp;
	char name[32];
	struct stat st;
	size_t len;
	int img, flags;

	if (fstat(fd, &st)) {
		pr_perror("fstat of fd %d", fd);
		return -errno;
	}
	if (!is_rtc(&st))
		return -ENOTSUP;
	if (ioctl(fd, RTC_IRQP_READ, &irqp)) {
		pr_perror("RTC_IRQP_READ");
		return -errno;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0) {
		pr_perror("F_GETFL");
		return -errno;
	}
	snprintf(name, sizeof(name), "rtc.%d", id);
	img = openat(criu_get_image_dir(), name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img < 0) {
		pr_perror("cannot create %s", name);
		return -errno;
	}
	len = rtc_entry_encode(irqp, (uint32_t)flags, buf);
	if (write(img, buf, len) != (ssize_t)len) {
		pr_perror("cannot write %s", name);
		close(img);
		return -EIO;
	}
	close(img);
	pr_info("id %d: rate %lu Hz, flags %#o\n", id, irqp, flags);
	return 0;
}

int cr_plugin_restore_file(int id)
{
	unsigned char buf[ENTRY_MAX + 1];
	char name[32];
	uint64_t irqp;
	uint32_t flags;
	ssize_t len;
	int img, fd;

	snprintf(name, sizeof(name), "rtc.%d", id);
	img = openat(criu_get_image_dir(), name, O_RDONLY | O_CLOEXEC);
	if (img < 0) {
		if (errno == ENOENT)
			return -ENOTSUP; /* not one of ours */
		pr_perror("cannot open %s", name);
		return -errno;
	}
	len = read(img, buf, sizeof(buf));
	close(img);
	if (len < 0 || len > ENTRY_MAX || rtc_entry_decode(buf, (size_t)len, &irqp, &flags)) {
		pr_err("%s is not an RtcEntry\n", name);
		return -EINVAL;
	}
	pr_info("id %d: restoring with rate %llu Hz, flags %#o\n", id, (unsigned long long)irqp, flags);

	fd = open(RTC_DEV, (flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open %s", RTC_DEV);
		return -errno;
	}
	if (ioctl(fd, RTC_IRQP_SET, (unsigned long)irqp)) {
		pr_perror("RTC_IRQP_SET %llu", (unsigned long long)irqp);
		goto err;
	}
	if (ioctl(fd, RTC_PIE_ON, 0)) {
		pr_perror("RTC_PIE_ON");
		goto err;
	}
	return fd;
err:
	len = -errno;
	close(fd);
	return (int)len;
}
