"""An IPVS table in memory with the kernel's refusals: the fake kernel for plan and agent tests."""

from __future__ import annotations

import dataclasses
import errno

from director.ipvs import model


class MemoryKernel:
    """The IPVS table as the kernel keeps it, with the kernel's refusals (one verb per call)."""

    def __init__(self, services=()):
        self.table = {s.key: s for s in services}
        self.calls = []
        self.dumps = 0

    def dump(self):
        self.dumps += 1
        return list(self.table.values())

    def _svc(self, svc):
        if svc.key not in self.table:
            raise OSError(errno.ESRCH, "No such process")
        return self.table[svc.key]

    def add_service(self, svc):
        self.calls.append("add_service")
        if svc.key in self.table:
            raise OSError(errno.EEXIST, "File exists")
        if svc.scheduler not in model.SCHEDULERS:
            raise OSError(errno.ENOENT, "No such file or directory")
        self.table[svc.key] = dataclasses.replace(svc, dests=())

    def set_service(self, svc):
        self.calls.append("set_service")
        old = self._svc(svc)
        self.table[svc.key] = dataclasses.replace(svc, dests=old.dests)

    def del_service(self, svc):
        self.calls.append("del_service")
        self._svc(svc)
        del self.table[svc.key]

    def _put(self, svc, dest, must_exist):
        old = self._svc(svc)
        dests = {d.key: d for d in old.dests}
        if (dest.key in dests) != must_exist:
            raise OSError(errno.ENOENT if must_exist else errno.EEXIST, "refused")
        if dest.l_threshold > dest.u_threshold:
            raise OSError(errno.ERANGE, "Numerical result out of range")
        dests[dest.key] = dest
        self.table[svc.key] = dataclasses.replace(old, dests=tuple(dests.values()))

    def add_dest(self, svc, dest):
        self.calls.append("add_dest")
        self._put(svc, dest, False)

    def set_dest(self, svc, dest):
        self.calls.append("set_dest")
        self._put(svc, dest, True)

    def del_dest(self, svc, dest):
        self.calls.append("del_dest")
        old = self._svc(svc)
        self.table[svc.key] = dataclasses.replace(old, dests=tuple(d for d in old.dests if d.key != dest.key))
