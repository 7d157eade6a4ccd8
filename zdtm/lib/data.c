/*
 * zdtm test library: deterministic data patterns and checksums.
 *
 * Byte i of the pattern for a seed is byte (i % 8) of mix(seed, i / 8), so
 * any part of a pattern can be generated or checked on its own.
 */
#include "zdtmtst.h"

static inline uint64_t mix(uint64_t seed, uint64_t idx)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (idx + 1) * 0xbf58476d1ce4e5b9ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint8_t pat_byte(uint64_t seed, size_t off)
{
	return (uint8_t)(mix(seed, off / 8) >> ((off % 8) * 8));
}

void datagen_at(void *buf, size_t len, uint64_t seed, size_t off)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) % 8); i++)
		p[i] = pat_byte(seed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = mix(seed, (off + i) / 8);

		memcpy(p + i, &w, 8);	/* little-endian: byte k is bits 8k.. */
	}
	for (; i < len; i++)
		p[i] = pat_byte(seed, off + i);
}

static ssize_t chk_at(const void *buf, size_t len, uint64_t seed, size_t off)
{
	const uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) % 8); i++)
		if (p[i] != pat_byte(seed, off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = mix(seed, (off + i) / 8), v;

		memcpy(&v, p + i, 8);
		if (v != w)
			break;
	}
	for (; i < len; i++)
		if (p[i] != pat_byte(seed, off + i))
			return i;
	return -1;
}

int datachk_at(const void *buf, size_t len, uint64_t seed, size_t off)
{
	return chk_at(buf, len, seed, off) >= 0;
}

void datagen(void *buf, size_t len, uint64_t seed)
{
	datagen_at(buf, len, seed, 0);
}

int datachk(const void *buf, size_t len, uint64_t seed)
{
	return chk_at(buf, len, seed, 0) >= 0;
}

ssize_t datachk_off(const void *buf, size_t len, uint64_t seed)
{
	return chk_at(buf, len, seed, 0);
}

/* CRC-32 (IEEE 802.3, reflected, as in zlib): crc32(0, buf, len). */
uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	static int ready;
	const uint8_t *p = buf;
	size_t i;

	if (!ready) {
		for (i = 0; i < 256; i++) {
			uint32_t c = i;
			int k;

			for (k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}

	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}
