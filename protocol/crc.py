"""CRC-32/IEEE (crcmod's predefined 'crc-32'; zlib, Ethernet), as the device computes it.

binascii.crc32 is C code on MicroPython and CPython alike. The host passes crcmod's
function instead (see host/pumpguard/api/link.py) and the golden vectors pin the two equal.
"""

from binascii import crc32

# CRC-32 of any frame followed by its own CRC (little-endian): a receiver compares
# with this constant instead of unpacking and comparing a second integer.
RESIDUE = 0x2144DF1C

__all__ = ["RESIDUE", "crc32"]
