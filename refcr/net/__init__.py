"""Sockets and network namespaces: unix and inet sockets (found with
sock_diag), the network namespace's links/addresses/routes (rtnetlink via
pyroute2), the network lock (nftables), and outside namespaces joined with
--external net[INO].

Images: unixsk/inetsk entries (proto/unix.proto, inet.proto), netns-N.img
(proto/netns.proto).  Imports ptrace/, fs.fd (the shared fd types), plugins/
(DUMP_EXT_LINK, unix socket hooks), external and actions; nsenter (entering
a network namespace) imports nothing but ptrace.native.
"""
