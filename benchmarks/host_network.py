"""Worker hosts on one machine: each in a network namespace of its own, or, where namespaces cannot be made, in a
process group of its own. Used through benchmarks/host_cluster.py.

With namespaces (Linux, root, iproute2), host i gets a namespace `tidings-<pid>-h<i>` joined to the machine by a
veth pair: 10.231.N.2 inside, 10.231.N.1 on the machine's side (N free on this machine, one per host). A host
reaches the machine's services only through its own link, at its `service_address`, so the services (a Redis
server, a forwarder to PostgreSQL, the fake provider) must listen on every host's `service_address`; killing a host
kills every process in its namespace, as when the machine under them dies.

Without them (no `ip`, not root, a container that forbids it, or TIDINGS_HOSTS=processes), every host reaches the
services at 127.0.0.1 and is a process group whose processes (RQ's work horses included) are found from /proc.
`HostNetwork.mode` says which ran, in words, for the run's output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACES = "network namespaces (veth pairs)"
PROCESS_GROUPS = "process groups on 127.0.0.1 (network namespaces unavailable: {why})"
PREFIX = "tidings-"
SUBNETS = "10.231.{}.0/24"


@dataclass
class Host:
    name: str
    service_address: str  # where this host reaches the services
    own_address: str  # the address its connections come from
    netns: str | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None if they can (checked by making one)."""
    if os.environ.get("TIDINGS_HOSTS") == "processes":
        return "TIDINGS_HOSTS=processes"
    if not shutil.which("ip"):
        return "no `ip` command: install iproute2 (scripts/install_iproute2.sh)"
    if os.geteuid() != 0:
        return "not root"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def remove_stale_namespaces() -> list[str]:
    """Namespaces (and with them their veth pairs) left by runs whose process is gone, and the workers still
    running in them: a SIGKILLed pytest cannot clean up after itself, so the next run does."""
    removed = []
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        if name.startswith(PREFIX) and name.split("-")[1].isdigit() and not _pid_alive(int(name.split("-")[1])):
            for pid in _ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "delete", name, check=False)
            removed.append(name)
    return removed


def _free_subnets(count: int) -> list[int]:
    """`count` third octets N whose 10.231.N.0/24 no address or route of this machine uses."""
    used = _ip("-o", "-4", "addr", check=False).stdout + _ip("-4", "route", "show", "table", "all", check=False).stdout
    start = os.getpid() % 200  # two runs at once start in different places
    free = [n % 250 + 1 for n in range(start, start + 250) if f"10.231.{n % 250 + 1}." not in used]
    if len(free) < count:
        raise RuntimeError("no free 10.231.N.0/24 subnets for the hosts' links")
    return free[:count]


class HostNetwork:
    """`count` hosts; use as a context manager, which removes every namespace and stops every process on exit."""

    def __init__(self, count: int) -> None:
        self.hosts: list[Host] = []
        why = namespaces_unavailable()
        self.mode = NAMESPACES if why is None else PROCESS_GROUPS.format(why=why)
        self.namespaced = why is None
        if not self.namespaced:
            self.hosts = [Host(f"h{i}", "127.0.0.1", "127.0.0.1") for i in range(1, count + 1)]
            return
        remove_stale_namespaces()
        try:
            for i, subnet in enumerate(_free_subnets(count), start=1):
                self.hosts.append(self._make_namespace(i, subnet))
        except BaseException:
            self.close()
            raise

    def _make_namespace(self, index: int, subnet: int) -> Host:
        pid = os.getpid()
        netns, outside, inside = f"{PREFIX}{pid}-h{index}", f"tid{pid}h{index}", f"tid{pid}n{index}"
        host = Host(f"h{index}", f"10.231.{subnet}.1", f"10.231.{subnet}.2", netns=netns)
        self.hosts.append(host)  # before it is complete, so close() removes what was made
        _ip("netns", "add", netns)
        _ip("link", "add", outside[:15], "type", "veth", "peer", "name", inside[:15])
        _ip("link", "set", inside[:15], "netns", netns)
        _ip("addr", "add", f"{host.service_address}/24", "dev", outside[:15])
        _ip("link", "set", outside[:15], "up")
        _ip("-n", netns, "addr", "add", f"{host.own_address}/24", "dev", inside[:15])
        _ip("-n", netns, "link", "set", inside[:15], "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", host.service_address)
        self.hosts.remove(host)
        return host

    @property
    def service_addresses(self) -> list[str]:
        """Every address a service must listen on for all hosts to reach it."""
        return sorted({host.service_address for host in self.hosts})

    def start(self, host: Host, command: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        """Run `command` on `host`, in a new process group (session), its output to `log` (a file, not a pipe: a
        pipe nobody reads fills up and freezes a busy worker)."""
        prefix = ["ip", "netns", "exec", host.netns] if host.netns else []
        with open(log, "a") as out:
            process = subprocess.Popen(
                [*prefix, *command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        host.processes.append(process)
        return process

    def pids(self, host: Host) -> list[int]:
        """Every process running on the host now: all of its namespace's, or its process groups' trees."""
        if host.netns:
            listed = _ip("netns", "pids", host.netns, check=False).stdout.split()
            return [int(pid) for pid in listed if pid.isdigit()]
        return [pid for process in host.processes if process.poll() is None for pid in _tree(process.pid)]

    def kill(self, host: Host) -> int:
        """SIGKILL everything on the host, as when its machine dies; returns how many processes. Each is frozen
        first (SIGSTOP), so a worker cannot fork a new work horse meanwhile; RQ puts each work horse in a session
        of its own, so killing the worker's process group alone would leave the horse sending."""
        pids = self.pids(host)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        for process in host.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        return len(pids)

    def stop_all(self, timeout: float = 15) -> None:
        """SIGTERM every process started (RQ's warm shutdown), then SIGKILL what is left of each host."""
        running = [p for host in self.hosts for p in host.processes if p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for host in self.hosts:
            if any(p.poll() is None for p in host.processes) or (host.netns and self.pids(host)):
                self.kill(host)

    def close(self) -> None:
        """Stop everything and delete the namespaces (deleting one deletes its veth pair)."""
        try:
            self.stop_all()
        finally:
            for host in self.hosts:
                if host.netns:
                    _ip("netns", "delete", host.netns, check=False)

    def __enter__(self) -> HostNetwork:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _tree(pid: int) -> Iterator[int]:
    """The process and its descendants, from the kernel's list of each process's children."""
    yield pid
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            yield from _tree(int(child))
