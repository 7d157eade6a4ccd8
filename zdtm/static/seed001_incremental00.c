/* seed001_incremental00: seed001_replay00 with its checkpoints as a --track-mem
 * chain (each dump stores only what changed since the previous one); the
 * restored checkpoint 2 is rebuilt from ckpt-2 and its parent ckpt-1. */
#include "seed001_replay00.c"
