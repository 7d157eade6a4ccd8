"""Address spaces: memory areas (VMAs) and their pages, memfd files, aio
contexts (their rings), and dirty-page tracking for incremental dumps.

Images: mm-PID.img (proto/mm.proto), pagemap-*.img (proto/pagemap.proto) with
raw pages-N.img, memfd entries in files.img (proto/files.proto).  Imports
ptrace/, images/, fs/ (memfd is an fd kind too), ipc/ (SysV shm attachments)
and plugins/ (device mappings); never the pipelines, net/, ns/ or kernel/.
"""
