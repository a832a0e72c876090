# The Internet checksum (RFC 1071) for the raw-socket helpers (forge-icmp.py,
# spoof-udp.py): the ones' complement of the ones' complement sum of 16-bit words.
import struct


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
