"""Namespaces that are not owned by another package: the mount namespace
(mntns: the mount tree, rebuilt with the new mount API in mountapi), UTS,
and fds of namespaces (nsfd).
The PID namespace is made by the restore pipeline with clone3; the network
namespace is in net/, the IPC namespace in ipc/.

Images: mountpoints-N.img (proto/mntns.proto), utsns-N.img (proto/uts.proto).
Imports ptrace/, images/, plugins/ (DUMP/RESTORE_EXT_MOUNT) and fs.eventfd.
"""
