#!/usr/bin/python3
"""state-text.py - prints a fedwall state file (STATE_DIR/state) as text.

    tools/state-text.py [STATE_FILE]      (default /var/lib/fedwall/state)

Formats 4, 3 and 2 (binary, refresh/state.h) are printed the way format 1
was written, one `source KIND CONFIRMED TTL FROM NAME` line per entry,
then its `addr PREFIX` lines, plus, after its source line: a `family 4`
or `family 6` line for one family of a name (format 3: a name's A and
AAAA records are two entries), a `dropped N` line for an entry whose N
addresses were dropped at stale_after (kept, with when it was last
confirmed, until it answers again), and for a list whose file identity
is known an `ident DEV INO SIZE MTIME_NS CTIME_NS` line; for a list URL
or a feed (format 4) `fetched UNIXTIME`, `etag VALUE`, `last_modified
VALUE`, `version VALUE` lines when known, an `ids ID;ID,...` line with a feed's
publisher entries per group, and per feed port group a
`ports GROUP PORTS...` line, its addresses' lines ending in ` ports
GROUP`.  A
format-1 file is printed as it is, without its `# sum` line.  The checksum
and the layout are checked as fedwall checks them; a file fedwall would
not trust is an error (exit 1).  For the lab suites and for operators:
the state is no longer text, and `grep` needs some.
"""
import ipaddress
import struct
import sys

MAGIC = b"\x89FWS\r\n\x1a\n"
KINDS = ("host", "domain", "list", "url", "feed")
FROMS = ("dns", "dnssec", "file", "https", "http")
M64 = (1 << 64) - 1


def state_sum(b):
    """common/util.c sum64(): 64-bit words, multiply, xor-shift."""
    h = (0x9E3779B97F4A7C15 ^ len(b)) & M64
    padded = b + b"\0" * (-len(b) % 8)
    for (w,) in struct.iter_unpack("<Q", padded):
        h = ((h ^ w) * 0xFF51AFD7ED558CCD) & M64
        h ^= h >> 32
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    return h ^ (h >> 33)


def pad8(n):
    return (n + 7) & ~7


def fmt(fam, addr, plen):
    net = ipaddress.ip_network((addr, plen))
    return str(net.network_address) if plen == (32 if fam == 4 else 128) else str(net)


def tag(grp, i):
    return " ports %d" % grp[i] if grp and grp[i] else ""


def meta4(b, off, meta, naddrs, out):
    """Format 4's fetch fields after the name: fetched, the validators,
    the version, the port groups and each address's group."""
    fetched, le, ll, lv, ngroups, nports, ids, zero = meta
    if zero or (ids and not ngroups):
        raise ValueError("malformed")
    if fetched:
        out.write("fetched %d\n" % fetched)
    for key, n in (("etag", le), ("last_modified", ll), ("version", lv), ("ids", ids)):
        if n:
            out.write("%s %s\n" % (key, b[off:off + n].decode("utf-8", "replace")))
        off += pad8(n)
    groups = {}
    for k in range(nports):
        g, proto, _, lo, hi = struct.unpack_from("<HBBHH", b, off + 8 * k)
        port = "%s/%d" % ("tcp" if proto == 6 else "udp", lo) + ("-%d" % hi if hi != lo else "")
        groups.setdefault(g + 1, []).append(port)
    off += 8 * nports
    for g in sorted(groups):
        out.write("ports %d %s\n" % (g, " ".join(groups[g])))
    grp = None
    if ngroups:
        grp = struct.unpack_from("<%dI" % naddrs, b, off)
        off += pad8(4 * naddrs)
    return off, grp


def dump2(b, out):
    if len(b) < 40 or len(b) % 8 or struct.unpack_from("<Q", b, 24)[0] != len(b):
        raise ValueError("truncated or corrupted (length)")
    if struct.unpack_from("<Q", b, len(b) - 8)[0] != state_sum(b[:-8]):
        raise ValueError("truncated or corrupted (checksum)")
    version, flags, n = struct.unpack_from("<IIQ", b, 8)
    if version not in (2, 3, 4) or flags:
        raise ValueError("unknown format version %d" % version)
    off = 32
    for _ in range(n):
        (kind, frm, family, eflags, nlen, confirmed, ttl, n4, n6, ndropped, dev, ino,
         size, mtime, ctime) = struct.unpack_from("<BBBBIqIIIIQQQqq", b, off)
        if version == 2 and (family or eflags or ndropped):
            raise ValueError("malformed")
        if family not in (0, 4, 6) or eflags > 1:
            raise ValueError("malformed")
        if version < 4 and kind > 2:
            raise ValueError("malformed")
        meta = struct.unpack_from("<qHHHHIHH", b, off + 72) if version == 4 else (0,) * 8
        off += 96 if version == 4 else 72
        name = b[off:off + nlen].decode("utf-8", "replace")
        off += pad8(nlen)
        out.write("source %s %d %d %s %s\n" % (KINDS[kind], confirmed, ttl, FROMS[frm], name))
        off, grp = meta4(b, off, meta, n4 + n6, out)
        if family:
            out.write("family %d\n" % family)
        if eflags & 1:
            out.write("dropped %d\n" % ndropped)
        if dev or ino or size or mtime or ctime:
            out.write("ident %d %d %d %d %d\n" % (dev, ino, size, mtime, ctime))
        a = off
        for i in range(n4):
            out.write("addr %s%s\n" % (fmt(4, bytes(b[a:a + 4]), b[a + 4]), tag(grp, i)))
            a += 5
        for i in range(n6):
            out.write("addr %s%s\n" % (fmt(6, bytes(b[a:a + 16]), b[a + 16]), tag(grp, n4 + i)))
            a += 17
        off += pad8(n4 * 5 + n6 * 17)
    if off != len(b) - 8:
        raise ValueError("malformed")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/var/lib/fedwall/state"
    with open(path, "rb") as f:
        b = f.read()
    try:
        if b.startswith(MAGIC):
            dump2(b, sys.stdout)
        else:
            sys.stdout.write("".join(l + "\n" for l in
                                     b.decode("utf-8", "replace").splitlines()
                                     if not l.startswith("# sum ")))
    except (ValueError, IndexError, struct.error) as e:
        sys.stderr.write("%s: not a state fedwall trusts: %s\n" % (path, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
