"""A cluster of hosts on one machine, for multi-node tests: each host is a network namespace with its own address
and host name, joined to the others through a bridge (a "switch" namespace), and Open MPI starts ranks across them
the way it does across machines: mpirun runs on the first host and reaches the others through an rsh agent that
runs a command inside the host's namespace (`ip netns exec`), over TCP only.

    with Cluster(2) as c:                 # 2 hosts, torn down on exit even when the test fails
        c.mpirun(2, [TERN, "train", ...])  # 2 ranks a host -> a Popen
        c.slow_link(1)                     # tc tbf on host 1's link, both directions
        c.link(1, up=False)                # cut host 1 off the network

Needs root (as CI has) and iproute2; `Cluster.unavailable()` says why a test must be skipped, `skip_unless_able()`
skips it (exit 77, ctest's SKIP_RETURN_CODE).
"""
import os
import shutil
import subprocess
import sys
import tempfile

# Open MPI over TCP across the namespaces: every host's link is eth0 (interface names are per namespace); ranks on
# the same host use shared memory, as on a real node.
MCA = ["--mca", "btl", "tcp,vader,self", "--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0",
       "--mca", "plm_rsh_no_tree_spawn", "1"]


def sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


class Cluster:
    def __init__(self, hosts=2):
        tag = f"{os.getpid() % 100000}"
        self.switch = f"tn{tag}s"
        self.names = [f"tn{tag}h{i}" for i in range(hosts)]  # namespace names, also the hosts' host names
        self.addrs = [f"10.{200 + os.getpid() % 50}.0.{i + 1}" for i in range(hosts)]
        self.dir = tempfile.mkdtemp(prefix="netns_cluster_")
        self.agent = os.path.join(self.dir, "rsh_agent")

    @staticmethod
    def unavailable():
        if os.geteuid() != 0:
            return "needs root (network namespaces)"
        for tool in ("ip", "tc", "unshare", "mpirun"):
            if not shutil.which(tool):
                return f"needs {tool}"
        probe = f"tnprobe{os.getpid()}"
        p = sh("ip", "netns", "add", probe, check=False)
        if p.returncode != 0:
            return f"cannot create a network namespace: {p.stderr.strip()}"
        sh("ip", "netns", "del", probe, check=False)
        return None

    @staticmethod
    def skip_unless_able():
        why = Cluster.unavailable()
        if why:
            print(f"SKIP: {why}")
            sys.exit(77)

    def __enter__(self):
        try:
            self.up()
        except Exception:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.names, self.addrs)):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # The host's end is eth0 in its namespace; the other end (port<i>) is on the switch's bridge.
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"port{i}", "netns", self.switch)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            # How long TCP retransmits to a peer that stopped answering before the connection fails: the kernel's
            # default (15 retries, about 15 minutes) would keep mpirun waiting that long for a daemon on a host that
            # was cut off. 5 retries: about 13 s, the value HPC sites use for fail-over (README, multi-node).
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_retries2=5")
            sh("ip", "-n", self.switch, "link", "set", f"port{i}", "master", "br0")
            sh("ip", "-n", self.switch, "link", "set", f"port{i}", "up")
        # mpirun's rsh agent: `AGENT HOST COMMAND...` runs COMMAND in HOST's namespace under HOST's own host name.
        table = "\n".join(f"  {a}) ns={n} ;;" for a, n in zip(self.addrs, self.names))
        with open(self.agent, "w") as f:
            f.write(f"""#!/bin/sh
host=$1; shift
case "$host" in
{table}
  *) echo "rsh_agent: unknown host $host" >&2; exit 255 ;;
esac
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$ns" "$*"
""")
        os.chmod(self.agent, 0o755)

    def down(self):
        for ns in self.names + [self.switch]:
            # Processes left in a namespace (a test that failed half-way) would keep it alive: end them first.
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def host_args(self, ranks_per_host):
        return ["-H", ",".join(f"{a}:{ranks_per_host}" for a in self.addrs)]

    def mpirun(self, ranks_per_host, command, extra=(), **popen):
        """Starts `mpirun` on host 0 with `ranks_per_host` ranks on every host; returns the Popen."""
        args = ["ip", "netns", "exec", self.names[0], "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"',
                self.names[0], "mpirun", "-np", str(ranks_per_host * len(self.names)),
                *self.host_args(ranks_per_host), "--mca", "plm_rsh_agent", self.agent, *MCA, *extra, *command]
        return subprocess.Popen(args, **popen)

    def pids(self, host, pattern):
        """PIDs of the processes in `host`'s namespace whose command line contains `pattern`."""
        out = []
        for pid in sh("ip", "netns", "pids", self.names[host], check=False).stdout.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if pattern.encode() in f.read().replace(b"\0", b" "):
                        out.append(int(pid))
            except OSError:
                pass
        return out

    def link(self, host, up):
        """Brings `host`'s network link up or down (a cut cable, as both ends see it)."""
        state = "up" if up else "down"
        sh("ip", "-n", self.names[host], "link", "set", "eth0", state)
        sh("ip", "-n", self.switch, "link", "set", f"port{host}", state)

    def slow_link(self, host, rate="1gbit"):
        """Shapes `host`'s link in both directions: a token bucket of `rate` with a 400 ms queue (this kernel has tbf
        but not netem, so no added delay)."""
        for ns, dev in ((self.names[host], "eth0"), (self.switch, f"port{host}")):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
               "burst", "32kbit", "latency", "400ms")
