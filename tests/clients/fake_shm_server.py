#!/usr/bin/python3
"""A minimal stand-in for the server side of the shm protocol (docs/shm-protocol.md, ABI 1),
written from the protocol document alone, so the client libraries can be tested without the real
server: handshake with SCM_RIGHTS, region header, tensor and frame slots, checksums (none,
crc32c, sha256; "server default" means crc32c), doorbell eventfd, FUTEX_WAKE.

The "policy" is a fixed function of the raw row: action j = tanh(0.01 * (j + 1) * sum(row)),
computed in float32. Single-threaded; not a performance reference.

  fake_shm_server.py SOCKET_PATH [--input-width 10] [--output-width 3]
Prints "ready <generation>" once listening; "checksum_failures N" on each failure.
"""

import argparse
import ctypes
import hashlib
import mmap
import os
import random
import select
import socket
import struct
import sys
import time

import numpy as np

MAGIC = 0x314D545342524E42
HEADER_SIZE = 4096
FREE, WRITING, SUBMITTED, PROCESSING, DONE = range(5)
TENSOR_INPUT_OFFSET = 320
FRAME_PIXELS_OFFSET = 4096
BPP = {1: 4, 2: 4, 3: 3, 4: 1}

_libc = ctypes.CDLL(None, use_errno=True)
SYS_FUTEX = 202  # x86-64
FUTEX_WAKE = 1


def align(v, a=64):
    return (v + a - 1) // a * a


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            table.append(c)
        crc32c.table = table
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


crc32c.table = None


def checksum(kind, data):
    if kind == 0:
        return 0
    if kind == 2:
        return crc32c(bytes(data))
    if kind == 3:
        return struct.unpack("<Q", hashlib.sha256(bytes(data)).digest()[:8])[0]
    raise ValueError(kind)


class Session:
    def __init__(self, conn, mm, memfd, geometry, kind):
        self.conn = conn
        self.mm = mm
        self.memfd = memfd
        self.g = geometry
        self.kind = kind
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(mm))

    def u32(self, off):
        return struct.unpack_from("<I", self.mm, off)[0]

    def u64(self, off):
        return struct.unpack_from("<Q", self.mm, off)[0]

    def put(self, fmt, off, *values):
        struct.pack_into(fmt, self.mm, off, *values)

    def store_word(self, off, value):
        """One aligned 4-byte store, for the words the client reads concurrently (slot states,
        server_sleeping). struct.pack_into must not be used for them: it zero-fills the field
        before writing the value byte by byte, so a client scanning for FREE (0) slots could
        claim a slot in that window, and two callers would then share it."""
        ctypes.c_uint32.from_address(self.base + off).value = value

    def wake(self, state_off):
        if self.u32(state_off + 4):  # client_waiting
            _libc.syscall(SYS_FUTEX, ctypes.c_void_p(self.base + state_off), FUTEX_WAKE,
                          0x7FFFFFFF, None, None, 0)

    def respond(self, off, seq, status, error, t_recv):
        err = error.encode()[:192]
        now = time.monotonic_ns()
        self.put("<QII", off + 64, seq, status, len(err))
        self.mm[off + 80:off + 80 + 192] = err.ljust(192, b"\0")
        self.put("<QQQQ", off + 64 + 208, t_recv, t_recv + 1000, now - 500, now)


class FakeServer:
    def __init__(self, path, input_width, output_width):
        self.path = path
        self.iw = input_width
        self.ow = output_width
        self.generation = random.getrandbits(63) | 1
        self.doorbell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        if os.path.exists(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.sessions = []
        self.checksum_failures = 0

    def handshake(self, conn):
        data = b""
        while len(data) < 40:
            chunk = conn.recv(40 - len(data))
            if not chunk:
                conn.close()
                return
            data += chunk
        magic, abi, slots, rows, frames, cap, kind, _ = struct.unpack("<QIIIIQII", data)

        def refuse(status, message):
            conn.sendall(struct.pack("<QIIQQ", MAGIC, 1, status, 0, 0) +
                         message.encode()[:255].ljust(256, b"\0"))
            conn.close()

        if magic != MAGIC or abi != 1:
            return refuse(1, "bad magic or ABI")
        if not (1 <= slots <= 256 and 1 <= rows <= 1024 and frames <= 16 and
                cap <= (256 << 20)):
            return refuse(1, "hello out of range")
        if kind == 255:
            kind = 2
        if kind == 1:
            return refuse(1, "this fake server has no xxh3")
        if kind not in (0, 2, 3):
            return refuse(1, f"unknown checksum_kind {kind}")
        out_off = align(TENSOR_INPUT_OFFSET + rows * self.iw * 4)
        t_stride = align(out_off + rows * self.ow * 4)
        f_stride = align(FRAME_PIXELS_OFFSET + cap)
        f_off = align(HEADER_SIZE + slots * t_stride)
        size = (f_off + frames * f_stride + 4095) // 4096 * 4096
        memfd = os.memfd_create("brainstem-fake", os.MFD_CLOEXEC)
        os.ftruncate(memfd, size)
        mm = mmap.mmap(memfd, size)
        struct.pack_into("<QIIQQIIIIQQIIQQQ", mm, 0, MAGIC, 1, HEADER_SIZE, size,
                         self.generation, self.iw, self.ow, rows, slots, HEADER_SIZE, t_stride,
                         frames, kind, f_off, f_stride, cap)
        struct.pack_into("<I", mm, 128, 1)  # serving
        g = dict(rows=rows, slots=slots, frames=frames, cap=cap, out_off=out_off,
                 t_stride=t_stride, f_off=f_off, f_stride=f_stride)
        welcome = struct.pack("<QIIQQ", MAGIC, 1, 0, size, self.generation) + b"\0" * 256
        socket.send_fds(conn, [welcome], [memfd, self.doorbell])
        self.sessions.append(Session(conn, mm, memfd, g, kind))

    def tensor(self, s, i):
        off = HEADER_SIZE + i * s.g["t_stride"]
        if s.u32(off) != SUBMITTED:
            return False
        t_recv = time.monotonic_ns()
        s.store_word(off, PROCESSING)
        seq, rows, flags, seed, csum = struct.unpack_from("<QIIQQ", s.mm, off + 8)
        status, error = 0, ""
        if not 1 <= rows <= s.g["rows"]:
            status, error = 1, f"rows {rows} out of range"
        else:
            start = off + TENSOR_INPUT_OFFSET
            raw = s.mm[start:start + rows * self.iw * 4]
            if s.kind and checksum(s.kind, raw) != csum:
                self.checksum_failures += 1
                print("checksum_failures", self.checksum_failures, flush=True)
                status, error = 2, "checksum mismatch on the tensor input"
            else:
                x = np.frombuffer(raw, dtype=np.float32).reshape(rows, self.iw)
                total = x.sum(axis=1, dtype=np.float32)
                scale = np.arange(1, self.ow + 1, dtype=np.float32) * np.float32(0.01)
                y = np.tanh(total[:, None] * scale[None, :]).astype(np.float32)
                o = off + s.g["out_off"]
                s.mm[o:o + y.nbytes] = y.tobytes()
        s.respond(off, seq, status, error, t_recv)
        s.store_word(off, DONE)
        s.wake(off)
        return True

    def frame(self, s, i):
        off = s.g["f_off"] + i * s.g["f_stride"]
        if s.u32(off) != SUBMITTED:
            return False
        t_recv = time.monotonic_ns()
        s.store_word(off, PROCESSING)
        seq, w, h, stride, fmt, ts, nbytes, csum = struct.unpack_from("<QIIIIQQQ", s.mm, off + 8)
        status, error, result = 0, "", b""
        if fmt not in BPP or not (1 <= w <= 16384 and 1 <= h <= 16384) or \
                stride < w * BPP[fmt] or stride * h != nbytes or nbytes > s.g["cap"]:
            status, error = 1, "frame fields out of range"
        else:
            start = off + FRAME_PIXELS_OFFSET
            if s.kind and checksum(s.kind, s.mm[start:start + nbytes]) != csum:
                self.checksum_failures += 1
                print("checksum_failures", self.checksum_failures, flush=True)
                status, error = 2, "checksum mismatch on the frame"
            else:
                result = f"{w}x{h} fmt {fmt} {nbytes} bytes".encode()
        s.respond(off + 64, seq, status, error, t_recv)  # response block at +128
        struct.pack_into("<I", s.mm, off + 368, len(result))
        s.mm[off + 372:off + 372 + len(result)] = result
        s.store_word(off, DONE)
        s.wake(off)
        return True

    def run(self):
        print("ready", self.generation, flush=True)
        idle_since = time.monotonic()
        while True:
            busy = False
            for s in self.sessions:
                for i in range(s.g["slots"]):
                    busy |= self.tensor(s, i)
                for i in range(s.g["frames"]):
                    busy |= self.frame(s, i)
            if busy:
                idle_since = time.monotonic()
            # New sessions and hang-ups are served even while busy (zero-timeout check).
            self.service(0 if busy or time.monotonic() - idle_since < 0.02 else None)

    def service(self, timeout):
        """Accepts, reads doorbells and hang-ups; sleeps (timeout None) when idle."""
        sleeping = timeout is None
        if sleeping:
            for s in self.sessions:
                s.store_word(192, 1)  # server_sleeping
            # Re-check once: a client may have submitted just before seeing the flag.
            if any(s.u32(HEADER_SIZE + i * s.g["t_stride"]) == SUBMITTED
                   for s in self.sessions for i in range(s.g["slots"])) or \
                    any(s.u32(s.g["f_off"] + i * s.g["f_stride"]) == SUBMITTED
                        for s in self.sessions for i in range(s.g["frames"])):
                timeout = 0
            else:
                timeout = 0.5
        fds = [self.listener, self.doorbell] + [s.conn for s in self.sessions]
        ready, _, _ = select.select(fds, [], [], timeout)
        for r in ready:
            if r is self.listener:
                conn, _ = self.listener.accept()
                self.handshake(conn)
            elif r == self.doorbell:
                try:
                    os.eventfd_read(self.doorbell)
                except BlockingIOError:
                    pass
            else:
                if not r.recv(1):  # hang-up: the client is gone
                    s = next(x for x in self.sessions if x.conn is r)
                    self.sessions.remove(s)
                    r.close()
        if sleeping:
            for s in self.sessions:
                s.store_word(192, 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--input-width", type=int, default=10)
    parser.add_argument("--output-width", type=int, default=3)
    args = parser.parse_args()
    FakeServer(args.socket, args.input_width, args.output_width).run()


if __name__ == "__main__":
    sys.exit(main())
