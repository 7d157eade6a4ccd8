"""Address spaces: memory areas (VMAs) and their pages, memfd files, and
dirty-page tracking for incremental dumps.

Images: mm-PID.img (proto/mm.proto), pagemap-*.img (proto/pagemap.proto) with
raw pages-N.img, memfd entries in files.img (proto/files.proto).  Imports
ptrace/, images/, and fs/ for memfd's file side; never the pipelines.
"""
