"""Sockets and network namespaces: unix and inet sockets (found with
sock_diag), the network namespace's links/addresses/routes (rtnetlink via
pyroute2), the network lock (nftables), and outside namespaces joined with
--external net[INO].

Images: unixsk/inetsk entries (proto/unix.proto, inet.proto), netns-N.img
(proto/netns.proto).  Imports ptrace/, fs/ (the fd registry) and plugins/.
"""
