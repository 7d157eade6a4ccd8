"""Open files: the fd registry (files) and one module per kind of open file
description the kernel keeps under fs/: regular files, pipes, FIFOs,
eventfd/signalfd, epoll, inotify, timerfd, POSIX/flock locks, fd owners
(F_SETOWN), and the task's fs_struct (cwd, root, umask).

Images: fdinfo-PID.img and files.img (proto/fdinfo.proto, files.proto,
filekinds.proto, anon_fds.proto), pipes-data.img (proto/pipes_data.proto).
Kinds outside fs/ (sockets in net/, ttys in drivers/, memfd in mm/, plugin
files in plugins/) register through fs.files.KIND_MODULES and import only
fs.fd, the shared types.  Imports ptrace/, images/, mm.track (refcr's own
tracking fds) and plugins.host (DUMP_EXT_FILE); never net/ or drivers/.
"""
