"""The image directory and its file format (imagedir: magic, length-prefixed
protobuf messages, raw page files, the INCOMPLETE marker), the one
validation layer of a whole image set (validate, with devnodes: which
removed device nodes an image may have made again) and `refcr show` (show).
The schemas are proto/*.proto, compiled into refcr.pb.

Imports errors and refcr.pb only: every other package may import it.
"""
