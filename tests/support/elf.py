"""What a Linux shared object needs to load, read from its ELF headers (64-bit little-endian,
the only kind Lambda runs): the machine it is built for, the libraries it names (DT_NEEDED)
and the newest glibc symbol version it references (the version names in its dynamic string
table, which the dynamic loader checks against the running glibc)."""
import re
import struct
from typing import List, NamedTuple, Tuple

MACHINES = {62: "x86_64", 183: "aarch64"}
SHT_DYNAMIC, DT_NEEDED = 6, 1


class SharedObject(NamedTuple):
    machine: str
    needed: List[str]
    glibc: Tuple[int, int]  # (0, 0) if it references no glibc version


def read(data: bytes) -> SharedObject:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    machine = MACHINES.get(struct.unpack_from("<H", data, 18)[0], "other")
    section_offset = struct.unpack_from("<Q", data, 0x28)[0]
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, ...
    sections = [struct.unpack_from("<IIQQQQI", data, section_offset + i * entry_size)
                for i in range(count)]
    [dynamic] = [s for s in sections if s[1] == SHT_DYNAMIC]
    strings_section = sections[dynamic[6]]
    strings = data[strings_section[4]:strings_section[4] + strings_section[5]]
    needed = []
    for offset in range(dynamic[4], dynamic[4] + dynamic[5], 16):
        tag, value = struct.unpack_from("<qQ", data, offset)
        if tag == 0:
            break
        if tag == DT_NEEDED:
            needed.append(strings[value:strings.index(b"\0", value)].decode())
    versions = [(int(a), int(b)) for a, b in re.findall(rb"GLIBC_(\d+)\.(\d+)", strings)]
    return SharedObject(machine, needed, max(versions, default=(0, 0)))
