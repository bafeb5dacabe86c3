"""Frames on the zygote's control socket: a 4-byte big-endian length, then ``marshal``
data; a worker's socket rides along with SCM_RIGHTS (``socket.send_fds``)."""
from __future__ import annotations

import marshal
import os
import socket
import struct

_HEADER = struct.Struct(">I")


def send_frame(sock: socket.socket, value, fds: tuple = ()) -> None:
    data = marshal.dumps(value)
    frame = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        if sent < len(frame):
            sock.sendall(frame[sent:])
    else:
        sock.sendall(frame)


def recv_frame(sock: socket.socket, want_fds: bool = False):
    """(value, fds) of the next frame; (None, []) at end-of-file."""
    fds: list = []
    if want_fds:
        head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 4)
    else:
        head = sock.recv(_HEADER.size)
    head = _read_rest(sock, head, _HEADER.size)
    if head is None:
        for fd in fds:
            os.close(fd)
        return None, []
    body = _read_rest(sock, b"", _HEADER.unpack(head)[0])
    if body is None:
        return None, []
    return marshal.loads(body), fds


def _read_rest(sock: socket.socket, got: bytes, size: int):
    while len(got) < size:
        more = sock.recv(size - len(got))
        if not more:
            return None
        got += more
    return got
