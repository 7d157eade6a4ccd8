"""Device files whose kernel code lives in drivers/: terminals (ptys, the
console, a shell job's tty, outside terminals given with --external tty[..]).

Images: tty entries in files.img (proto/tty.proto).  Devices refcr does not
know go to the plugins (DUMP_EXT_FILE, HANDLE_DEVICE_VMA).  Imports
ptrace/, fs.fd and external (--external tty[...]).
"""
