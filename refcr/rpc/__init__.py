"""CRIU's RPC protocol, so that container runtimes (runc, crun, podman,
containerd, CRaC) and pycriu-style programs can use refcr instead of CRIU:
`refcr swrk FD` (one client on an inherited SOCK_SEQPACKET socket) and
`refcr service` (a daemon on a unix socket, a forked worker per connection).

wire (framing: one protobuf per packet, fds as SCM_RIGHTS), opts (criu_opts
to refcr's Options: each field honoured or refused by name), server (the
request loop, NOTIFY round trips for action scripts), client (the Python
API).  Messages: proto/rpc.proto.  A front end like cli: it may import the
pipelines; nothing else imports it but cli.
"""
