"""Whether a directory lives on a network filesystem, read from /proc/self/mountinfo. The response
cache (SQLite in WAL mode needs shared memory between its readers) and the flock'd schedule and
ledger files are only safe on a local disk; on NFS, SMB, Lustre and the like processes of other
machines would corrupt them or share nothing, so such a directory is refused in favour of a
store=redis:// server."""

import os
import re
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"

# Filesystems whose files other machines see too (kernel names, and FUSE ones as "fuse.<name>").
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "coda",
        "9p",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "panfs",
        "pvfs2",
        "orangefs",
        "ocfs2",
        "gfs2",
        "davfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.ceph-fuse",
        "fuse.cephfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.rclone",
        "fuse.juicefs",
        "fuse.lizardfs",
        "fuse.mfs",
        "fuse.goofys",
        "fuse.davfs2",
        "fuse.beegfs",
        "fuse.weka",
    }
)


def network_filesystem(path, mountinfo: str | None = None) -> str | None:
    """The type of the network filesystem holding `path` (e.g. "nfs4"), or None when it is local
    or the mount table cannot be read (not Linux). `mountinfo` is that table's text, for tests."""
    if mountinfo is None:
        try:
            with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
                mountinfo = f.read()
        except OSError:
            return None
    target = os.path.normpath(Path(path).expanduser().resolve())
    best, best_type = None, None
    for mount_point, fstype in _mounts(mountinfo):
        # Later lines win on equal mount points: they are mounted over the earlier ones.
        if _contains(mount_point, target) and (best is None or len(mount_point) >= len(best)):
            best, best_type = mount_point, fstype
    if best_type is None:
        return None
    return best_type if best_type in NETWORK_FILESYSTEMS or best_type.startswith("nfs") else None


def _mounts(mountinfo: str):
    """(mount point, fstype) of each line: 'ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SRC SUPER'."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        if separator + 1 >= len(fields):
            continue
        yield _unescape(fields[4]), fields[separator + 1]


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes (\040...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _contains(mount_point: str, target: str) -> bool:
    return mount_point == "/" or target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
