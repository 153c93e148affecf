"""Real multi-node Ray and Spark deployments on one machine, for the cluster tests (and benchmarks/engines.py).

A second "host" is a Linux network namespace with its own IP address, joined to this machine by a veth pair
(``ip netns add``, ``ip link add ... type veth``): a Ray worker node or a Spark worker started inside it can
only talk to the head / master over that link, as a second machine would. Where namespaces cannot be made
(no ``ip`` command, or no CAP_NET_ADMIN / CAP_SYS_ADMIN: an unprivileged container), every node runs on this
machine's loopback address instead, and :attr:`Topology.kind` says so (the tests print it).

Every process a deployment starts carries an environment variable with a token unique to it
(``STATICST_CLUSTER_TOKEN``); children inherit it (Ray's raylet and workers, Spark's executors and Python
workers), so teardown kills exactly those processes, by pid, and nothing else on the machine -- never
``ray stop`` or a kill by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TOKEN_ENV = "STATICST_CLUSTER_TOKEN"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
# `ray start` through the interpreter of this venv (the `ray` script may live in a base interpreter's bin/)
RAY_CLI = [PYTHON, "-m", "ray.scripts.scripts"]


@dataclass
class Topology:
    """Where the nodes of a deployment run.

    Attributes:
        kind: ``"netns"`` (the second host is a network namespace with its own IP) or ``"loopback"``.
        head_ip: The address of the head / master (and of the driver).
        worker_ip: The address of the second host.
        namespace: The namespace's name (``None`` on loopback).
        reason: Why namespaces were not used (loopback only).
    """

    kind: str
    head_ip: str
    worker_ip: str
    namespace: str | None = None
    reason: str = ""
    _links: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "netns":
            return f"netns: head {self.head_ip} (this host), second host {self.worker_ip} in network namespace {self.namespace} (veth)"
        return f"loopback: every node on {self.head_ip} ({self.reason})"

    def prefix(self, on_worker: bool) -> list[str]:
        """The command prefix that runs a process on the second host (``ip netns exec NS``) or here."""
        return ["ip", "netns", "exec", self.namespace] if on_worker and self.namespace else []


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _can_bind(ip: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
            return True
        except OSError:
            return False


@contextlib.contextmanager
def topology(force_loopback: bool = False) -> Iterator[Topology]:
    """A namespace + veth pair with its own subnet if the machine allows it, else loopback (with the reason)."""
    reason = ""
    if force_loopback or os.environ.get("STATICST_CLUSTER_NETNS", "1") == "0":
        reason = "namespaces turned off (STATICST_CLUSTER_NETNS=0)"
    elif shutil.which("ip") is None:
        reason = "no `ip` command (iproute2)"
    if not reason:
        tag = f"{os.getpid() % 100000}{secrets.token_hex(1)}"
        name, host_if, ns_if = f"stns{tag}", f"sth{tag}", f"stn{tag}"
        octet = 16 + os.getpid() % 200
        third = int(secrets.token_hex(1), 16)
        head_ip, worker_ip = f"10.{octet}.{third}.1", f"10.{octet}.{third}.2"
        made: list[str] = []
        try:
            _run("ip", "netns", "add", name)
            made.append("netns")
            _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            made.append("link")
            _run("ip", "link", "set", ns_if, "netns", name)
            _run("ip", "addr", "add", f"{head_ip}/24", "dev", host_if)
            _run("ip", "link", "set", host_if, "up")
            _run("ip", "netns", "exec", name, "ip", "addr", "add", f"{worker_ip}/24", "dev", ns_if)
            _run("ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up")
            _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
            probe = subprocess.run(
                ["ip", "netns", "exec", name, PYTHON, "-c",
                 f"import socket; s = socket.create_connection(({head_ip!r}, {_listen_once(head_ip)}), timeout=5); s.close()"],
                capture_output=True, timeout=30,
            )  # fmt: skip
            if probe.returncode != 0:
                raise RuntimeError(f"the namespace cannot reach {head_ip}: {probe.stderr.decode()[-300:]}")
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) and exc.stderr else str(exc)
            reason = f"network namespaces unavailable here: {detail[:200]}"
            _teardown_netns(name, host_if, made)
        else:
            topo = Topology("netns", head_ip, worker_ip, name)
            try:
                yield topo
            finally:
                _teardown_netns(name, host_if, made)
            return
    ip = "127.0.0.1"
    yield Topology("loopback", ip, ip, None, reason)


_LISTENERS: list[socket.socket] = []


def _listen_once(ip: str) -> int:
    """A listening socket on ``ip`` (kept open for the probe), its port."""
    s = socket.socket()
    s.bind((ip, 0))
    s.listen(1)
    _LISTENERS.append(s)
    return int(s.getsockname()[1])


def _teardown_netns(name: str, host_if: str, made: list[str]) -> None:
    for s in _LISTENERS:
        s.close()
    _LISTENERS.clear()
    if "link" in made:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
    if "netns" in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def marked_pids(token: str) -> list[int]:
    """The processes whose environment holds ``STATICST_CLUSTER_TOKEN=token`` (started by this deployment)."""
    needle = f"{TOKEN_ENV}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_marked(token: str, grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, every process of the deployment; returns the pids."""
    pids = marked_pids(token)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and marked_pids(token):
        time.sleep(0.1)
    for pid in marked_pids(token):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and marked_pids(token):
        time.sleep(0.1)
    return pids


def _env(token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SPARK_", "PYSPARK_"))}
    env[TOKEN_ENV] = token
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])  # this venv's python and `ray` first
    env["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing leaves the machine
    env.update(extra or {})
    return env


def wait_for(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()  # type: ignore[operator]
            if last:
                return
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s (last: {last!r})")


# ---------------------------------------------------------------------------------------------- Ray


@dataclass
class RayCluster:
    """A Ray head (here) and one worker node (on the second host), each with ``cpus`` CPUs."""

    topo: Topology
    token: str
    address: str
    workdir: Path
    cpus: int
    object_store_mb: int = 200
    # Ray's session folder (sockets live in it): short, because an AF_UNIX path has at most 107 bytes and pytest's
    # basetemp (/tmp/pytest-of-USER/pytest-NNN/...) plus Ray's session name leaves too little room
    ray_temp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stray", dir="/tmp")))
    head: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        """Ray's token authentication, with a token of this cluster's own (not ~/.ray/auth_token)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": f"staticst-test-{self.token}"}

    def driver_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a driver process on the head node (``ray.init()`` joins this cluster)."""
        return _env(self.token, {"RAY_ADDRESS": self.address, **self.auth, **(extra or {})})

    def nodes_alive(self) -> int:
        code = "import ray, json; ray.init(); print(json.dumps(sum(n['Alive'] for n in ray.nodes())))"
        out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=self.driver_env(), timeout=120)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else -1

    def worker_pids(self) -> list[int]:
        """Every process of the worker node (its raylet, its Ray workers and actors)."""
        if self.topo.namespace:
            out = subprocess.run(["ip", "netns", "pids", self.topo.namespace], capture_output=True, text=True, timeout=30)
            return [int(p) for p in out.stdout.split()]
        return [p for p in marked_pids(self.token) if _environ_has(p, "STATICST_CLUSTER_ROLE=worker")]

    def kill_worker_node(self) -> list[int]:
        """The second host dies: SIGKILL to every process of the worker node at once."""
        pids = self.worker_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def start_worker(self) -> None:
        self.worker = _ray_node(self, head=False)


def _environ_has(pid: int, entry: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return entry.encode() in handle.read().split(b"\0")
    except OSError:
        return False


def _worker_port_base() -> int:
    """100 ports for Ray's workers below the kernel's ephemeral range (where :func:`free_port` picks), by pid."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    slots = max((low - 10000) // 100, 1)
    return 10000 + (os.getpid() % slots) * 100


def _ray_node(cluster: RayCluster, head: bool) -> subprocess.Popen[bytes]:
    topo = cluster.topo
    ip = topo.head_ip if head else topo.worker_ip
    role = "head" if head else "worker"
    # explicit ports: nothing clashes with another Ray on this machine (in its own namespace, nothing else runs)
    pick = (lambda: free_port(ip)) if head or topo.namespace is None else iter(range(41001, 41100)).__next__
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")  # fmt: skip
    ports = {name: pick() for name in names}
    base = _worker_port_base() + (0 if head else 50)
    args = [
        *RAY_CLI, "start", "--block", f"--node-ip-address={ip}", f"--num-cpus={cluster.cpus}",
        "--disable-usage-stats", f"--min-worker-port={base}", f"--max-worker-port={base + 49}",
        f"--object-store-memory={cluster.object_store_mb * 2**20}", "--include-log-monitor=false",
        *[f"{k}={v}" for k, v in ports.items()],
    ]  # fmt: skip
    if head:
        args += ["--head", f"--port={cluster.address.rsplit(':', 1)[1]}", "--include-dashboard=false",
                 f"--ray-client-server-port={free_port(ip)}", f"--temp-dir={cluster.ray_temp}"]  # fmt: skip
    else:
        args += [f"--address={cluster.address}", f"--temp-dir={cluster.ray_temp}"]
    log = cluster.workdir / f"ray-{role}.log"
    cluster.logs.append(log)
    extra = {"STATICST_CLUSTER_ROLE": role, **cluster.auth}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [*topo.prefix(not head), *args], stdout=handle, stderr=subprocess.STDOUT, env=_env(cluster.token, extra),
            start_new_session=True,
        )  # fmt: skip


@contextlib.contextmanager
def ray_cluster(
    workdir: Path, cpus: int = 1, force_loopback: bool = False, object_store_mb: int = 200
) -> Iterator[RayCluster]:
    """A head (this host) + one worker node (the second host), started with ``ray start``; torn down by pid.

    Each node gets ``cpus`` CPUs and an object store of ``object_store_mb`` MB.
    """
    with topology(force_loopback) as topo:
        token = secrets.token_hex(8)
        address = f"{topo.head_ip}:{free_port(topo.head_ip)}"
        cluster = RayCluster(topo, token, address, workdir, cpus, object_store_mb)
        try:
            cluster.head = _ray_node(cluster, head=True)
            wait_for(lambda: cluster.nodes_alive() == 1, "the Ray head to start", 180)
            cluster.start_worker()
            wait_for(lambda: cluster.nodes_alive() == 2, "the Ray worker node to join", 180)
            yield cluster
        except BaseException:
            for log in cluster.logs:
                if log.exists():
                    sys.stderr.write(f"--- {log} (last lines)\n{log.read_text(errors='replace')[-3000:]}\n")
            raise
        finally:
            kill_marked(token)
            shutil.rmtree(cluster.ray_temp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- Spark


@dataclass
class SparkCluster:
    """A Spark standalone master and two workers (one on the second host), each with ``cores`` cores."""

    topo: Topology
    token: str
    master_url: str
    workdir: Path
    cores: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def submit_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a ``spark-submit`` of this cluster runs in (the worker Python is this venv's)."""
        return _env(self.token, {"PYSPARK_PYTHON": PYTHON, "SPARK_LOCAL_IP": self.topo.head_ip, **(extra or {})})

    def submit_args(self, *confs: str) -> list[str]:
        """``spark-submit`` to this cluster, the driver on the master's host."""
        base = [
            str(spark_home() / "bin" / "spark-submit"), "--master", self.master_url,
            "--conf", f"spark.driver.host={self.topo.head_ip}", "--conf", f"spark.driver.bindAddress={self.topo.head_ip}",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false",
            "--conf", f"spark.local.dir={self.workdir / 'driver-local'}",
        ]  # fmt: skip
        for conf in confs:
            base += ["--conf", conf]
        return base

    def alive_workers(self) -> int:
        try:
            with socket.create_connection((self.topo.head_ip, self.web_port), timeout=5) as s:
                s.sendall(b"GET /json/ HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            body = json.loads(data.split(b"\r\n\r\n", 1)[1])
            return sum(w.get("state") == "ALIVE" for w in body.get("workers", []))
        except (OSError, ValueError):
            return -1

    web_port: int = 0

    def worker_pids(self, which: int) -> list[int]:
        """Every process of worker ``which`` (0: this host, 1: the second host): its JVM, executors, Python workers."""
        return [p for p in marked_pids(self.token) if _environ_has(p, f"STATICST_CLUSTER_ROLE=worker{which}")]

    def kill_worker(self, which: int) -> list[int]:
        """Worker ``which`` dies: SIGKILL to its JVM, its executors and their Python workers at once."""
        pids = self.worker_pids(which)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _spark_daemon(cluster: SparkCluster, role: str, on_worker: bool, cls: str, *args: str) -> None:
    topo = cluster.topo
    ip = topo.worker_ip if on_worker else topo.head_ip
    work = cluster.workdir / role
    work.mkdir(parents=True, exist_ok=True)
    env = _env(
        cluster.token,
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": ip,
            "SPARK_LOCAL_HOSTNAME": ip,
            "SPARK_LOCAL_DIRS": str(work / "local"),
            "SPARK_WORKER_DIR": str(work / "work"),
            "SPARK_LOG_DIR": str(work),
            "SPARK_DAEMON_MEMORY": "512m",
            "PYSPARK_PYTHON": PYTHON,
            "STATICST_CLUSTER_ROLE": role,
        },
    )
    log = cluster.workdir / f"spark-{role}.log"
    cluster.logs.append(log)
    with log.open("ab") as handle:
        cluster.processes.append(
            subprocess.Popen(
                [*topo.prefix(on_worker), str(spark_home() / "bin" / "spark-class"), cls, *args],
                stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        )


@contextlib.contextmanager
def spark_cluster(workdir: Path, cores: int = 1, memory: str = "1g", force_loopback: bool = False) -> Iterator[SparkCluster]:
    """A standalone master + two workers (worker 1 on the second host), started with ``spark-class``; torn down by pid."""
    with topology(force_loopback) as topo:
        token = secrets.token_hex(8)
        port = free_port(topo.head_ip)
        cluster = SparkCluster(topo, token, f"spark://{topo.head_ip}:{port}", workdir, cores)
        cluster.web_port = free_port(topo.head_ip)
        try:
            _spark_daemon(cluster, "master", False, "org.apache.spark.deploy.master.Master",
                          "--host", topo.head_ip, "--port", str(port), "--webui-port", str(cluster.web_port))  # fmt: skip
            wait_for(lambda: cluster.alive_workers() == 0, "the Spark master to start", 180)
            for index in (0, 1):
                ip = topo.worker_ip if index else topo.head_ip
                _spark_daemon(cluster, f"worker{index}", bool(index), "org.apache.spark.deploy.worker.Worker",
                              "--host", ip, "--cores", str(cores), "--memory", memory, "--webui-port", "0",
                              cluster.master_url)  # fmt: skip
            wait_for(lambda: cluster.alive_workers() == 2, "both Spark workers to register", 180)
            yield cluster
        except BaseException:
            for log in cluster.logs:
                if log.exists():
                    sys.stderr.write(f"--- {log} (last lines)\n{log.read_text(errors='replace')[-3000:]}\n")
            raise
        finally:
            kill_marked(token)
