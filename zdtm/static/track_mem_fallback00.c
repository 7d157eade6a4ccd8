/* track_mem_fallback00: track_mem_uffd00 with the hash method forced
 * (REFCR_TRACK_MEM_METHOD=hash): page digests compared with the parent image,
 * no userfaultfd in the process at any time. */
#define TRACK_HASH 1
#include "track_mem_uffd00.c"
