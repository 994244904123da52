"""`python -m llmagg_devstack.with_launcher PID [--user NAME] COMMAND...`: run COMMAND (as system user NAME)
so that it gets SIGTERM when the process PID that started it dies, however it dies (Linux's parent-death
signal).

The signal is asked for here, in a fresh single-threaded process that then execs COMMAND (the request
survives exec), not between fork and exec in the launcher: once the launcher has threads (gRPC's, from
its health checks) code run there can deadlock the child before it ever execs. The user is changed
first, since changing it clears the request.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    launcher, command = int(argv[0]), argv[1:]
    if command[:1] == ["--user"]:
        user = pwd.getpwnam(command[1])
        os.setgid(user.pw_gid)
        os.initgroups(user.pw_name, user.pw_gid)
        os.setuid(user.pw_uid)
        command = command[2:]
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != launcher:  # the launcher died before the request took effect
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
