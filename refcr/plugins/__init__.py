"""CRIU-compatible plugins: the host (host: loading *.so files, the hook
chains, calling hooks in a fork of refcr) and the conformance suite plugin
authors run (conformance: `refcr plugin-check`).

Images: the plugin_hook records in files.img and the plugin-owned files a
plugin writes itself (proto/plugin.proto).  The C half is native/plugins.c.
Imports ptrace/, images/, fs.fd (describe), net.nsenter, and ns.mountapi
(conformance only); never the pipelines or the object packages' kinds.
"""
