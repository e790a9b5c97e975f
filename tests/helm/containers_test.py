#!/usr/bin/env python3
"""Runs the chart's election pods in Docker, as the kubelet would, and checks them.

  containers_test.py --docker DOCKER --rendered FILE --work DIR --run-id ID \
      --database HOST:PORT:USER:PASSWORD --replica HOST:PORT:USER:PASSWORD

scripts/test-containers builds the images, starts Redis and MariaDB, renders helm/instaface with
`helm template` and then runs this. Nothing here repeats the chart: every pod's containers,
arguments, environment, user, security context, volumes, probes and stop behaviour come from the
rendered StatefulSet. What the kubelet would do, this does with plain Docker:

- `$(VAR)` in args and env is expanded from the container's env, in order; POD_NAME is the pod's
  name, POD_IP is 127.0.0.1, and a secretKeyRef reads the rendered Secret.
- Every container uses the host's network, so the pod network is mapped onto loopback: a
  listener on 0.0.0.0 binds 127.0.0.1, and each port a pod declares (containerPort) becomes a
  free port of its own on 127.0.0.1, in its arguments, its probes and its Prometheus targets.
- An emptyDir of medium Memory is a tmpfs volume mounted by both containers; any other emptyDir
  and each volumeClaimTemplate is a host directory (the claim's outlives the pod, the emptyDir's
  does not); a Secret volume is a read-only directory of files with the volume's mode. The pod's
  fsGroup owns them all and is added to the containers' groups, as the kubelet does.
- runAsUser/runAsGroup, readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation and
  seccompProfile become --user, --read-only, --cap-drop/--cap-add, no-new-privileges and Docker's
  default seccomp profile (RuntimeDefault); memory limits become --memory.
- Deleting a pod sends SIGTERM to its containers, after the graphserver's preStop sleep, and
  SIGKILL after terminationGracePeriodSeconds; the StatefulSet then creates it again with fresh
  emptyDirs and the same claim. A killed container is restarted in place, as restartPolicy
  Always does.

Prints one line per check and ends with "N passed, M failed"; exits 1 if any failed.
"""

import argparse
import base64
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("containers_test.py: python3 yaml is missing (Debian: apt-get install python3-yaml)")

POD_IP = "127.0.0.1"
VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def log(message):
    print(f"containers_test: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantity_bytes(text):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 1000, "M": 1000**2, "G": 1000**3}
    match = re.fullmatch(r"(\d+)([KMG]i?)?", str(text))
    if not match:
        raise ValueError(f"cannot read the quantity {text}")
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def expand(text, env):
    """The kubelet's $(VAR) expansion: known names are replaced, $$ is a literal $."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return VAR_REF.sub(replace, text)


# -- HTTP ---------------------------------------------------------------------------------------


def http(method, url, body=None, timeout=3.0):
    """(status, parsed JSON or text); status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# -- Docker -------------------------------------------------------------------------------------


class Docker:
    def __init__(self, binary, run_id):
        self.binary = binary
        self.run_id = run_id

    def __call__(self, *args, check=True, timeout=120, input=None):
        result = subprocess.run(
            [self.binary] + list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])}...: {result.stderr.strip()}")
        return result

    def inspect(self, name, fmt):
        result = self("inspect", "-f", fmt, name, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def logs(self, name, lines=30):
        result = self("logs", "--tail", str(lines), name, check=False)
        return (result.stdout + result.stderr).strip()


# -- The pods, from the rendered chart -----------------------------------------------------------


def confinement_argv(spec, pod_security):
    """`docker run` flags for a container's security context and memory limit."""
    s = dict(pod_security, **(spec.get("securityContext") or {}))
    argv = []
    if "runAsUser" in s:
        argv += ["--user", f"{s['runAsUser']}:{s.get('runAsGroup', s['runAsUser'])}"]
    if "fsGroup" in pod_security:
        argv += ["--group-add", str(pod_security["fsGroup"])]
    if s.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    caps = s.get("capabilities") or {}
    for cap in caps.get("drop") or []:
        argv += ["--cap-drop", cap]
    for cap in caps.get("add") or []:
        argv += ["--cap-add", cap]
    if s.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    seccomp = (s.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        argv += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        raise ValueError(f"{spec['name']}: seccomp profile {seccomp} is not supported here")
    limit = (spec.get("resources") or {}).get("limits", {}).get("memory")
    if limit:
        argv += ["--memory", str(quantity_bytes(limit))]
    return argv


class Container:
    """One container of one pod incarnation, turned into a `docker run`."""

    def __init__(self, pod, spec):
        self.pod = pod
        self.spec = spec
        self.name = spec["name"]
        self.docker_name = f"{pod.set.prefix}{pod.name}-{self.name}"
        self.env = self._environment()
        self.args = [self.localize(expand(a, self.env)) for a in spec.get("args") or []]
        self.command = [self.localize(expand(a, self.env)) for a in spec.get("command") or []]
        security = dict(pod.set.pod_security, **(spec.get("securityContext") or {}))
        self.security = security

    def _environment(self):
        env = {}
        for item in self.spec.get("env") or []:
            name = item["name"]
            if "value" in item:
                env[name] = self.localize(expand(str(item["value"]), env))
                continue
            source = item.get("valueFrom") or {}
            if "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                env[name] = {"metadata.name": self.pod.name, "status.podIP": POD_IP}[path]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                env[name] = self.pod.set.secrets[ref["name"]][ref["key"]]
            else:
                raise ValueError(f"{self.name}: env {name} has a source this run does not know")
        return env

    def localize(self, text):
        """The pod network on loopback: 0.0.0.0 is 127.0.0.1, declared ports are the pod's own."""
        text = text.replace("0.0.0.0:", "127.0.0.1:")
        for port, host_port in self.pod.ports.items():
            text = re.sub(rf"(127\.0\.0\.1:){port}(?!\d)", rf"\g<1>{host_port}", text)
        return text

    def host_port(self, port):
        """A probe's or annotation's port (a number or a declared name) on the host."""
        if isinstance(port, str) and not port.isdigit():
            for container in self.pod.set.template_spec["containers"]:
                for declared in container.get("ports") or []:
                    if declared.get("name") == port:
                        return self.pod.ports[declared["containerPort"]]
            raise ValueError(f"{self.name}: no port named {port}")
        return self.pod.ports.get(int(port), int(port))

    def run_argv(self):
        argv = [
            "run", "-d", "--name", self.docker_name,
            "--label", f"instaface.run={self.pod.set.run_id}",
            "--label", f"instaface.pod={self.pod.name}",
            "--network", "host",
            "--stop-timeout", str(self.pod.set.grace_seconds),
        ]  # fmt: skip
        argv += confinement_argv(self.spec, self.pod.set.pod_security)
        for key, value in self.env.items():
            argv += ["--env", f"{key}={value}"]
        for mount in self.spec.get("volumeMounts") or []:
            argv += ["--mount", self.pod.mount(mount)]
        if self.command:
            argv += ["--entrypoint", self.command[0]]
        argv.append(self.spec["image"])
        return argv + self.command[1:] + self.args

    # Probes, as the kubelet runs them: exec inside the container, HTTP and TCP from the node.
    def probe(self, kind):
        probe = self.spec.get(kind)
        if not probe:
            return True, "none"
        timeout = probe.get("timeoutSeconds", 1)
        if "exec" in probe:
            command = probe["exec"]["command"]
            result = self.pod.set.docker(
                "exec", self.docker_name, *command, check=False, timeout=timeout + 5
            )
            return result.returncode == 0, f"exec exit {result.returncode}"
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://127.0.0.1:{self.host_port(get['port'])}{get.get('path', '/')}"
            status, _ = http("GET", url, timeout=timeout)
            return 200 <= status < 400, f"GET {get.get('path', '/')} {status}"
        if "tcpSocket" in probe:
            port = self.host_port(probe["tcpSocket"]["port"])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
                return True, f"tcp {port} open"
            except OSError as e:
                return False, f"tcp {port}: {e}"
        raise ValueError(f"{self.name}: {kind} of a kind this run does not know")


class Pod:
    def __init__(self, pod_set, ordinal):
        self.set = pod_set
        self.ordinal = ordinal
        self.name = f"{pod_set.sts_name}-{ordinal}"
        self.incarnation = 0
        # Host ports for what the pod declares; kept across incarnations, like a pod's name.
        self.ports = {}
        for container in pod_set.template_spec["containers"]:
            for declared in container.get("ports") or []:
                self.ports[declared["containerPort"]] = free_port()
        self.containers = {}

    def container(self, name):
        return self.containers[name]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.ports[self.set.http_port]}"

    def volume_source(self, name):
        volumes = {v["name"]: v for v in self.set.template_spec.get("volumes") or []}
        templates = self.set.sts["spec"].get("volumeClaimTemplates") or []
        claims = {c["metadata"]["name"] for c in templates}
        fs_group = self.set.pod_security.get("fsGroup")
        if name in claims:
            path = os.path.join(self.set.work, "claims", f"{name}-{self.name}")
            if not os.path.isdir(path):
                os.makedirs(path)
                self._own(path, fs_group, 0o2775)
            return {"type": "bind", "src": path}
        volume = volumes[name]
        if "emptyDir" in volume:
            empty = volume["emptyDir"] or {}
            if empty.get("medium") == "Memory":
                docker_volume = f"{self.set.prefix}{self.name}-{self.incarnation}-{name}"
                options = ["mode=2777"]
                if fs_group is not None:
                    options.append(f"gid={fs_group}")
                if empty.get("sizeLimit"):
                    options.append(f"size={quantity_bytes(empty['sizeLimit'])}")
                self.set.docker(
                    "volume", "create", "--label", f"instaface.run={self.set.run_id}",
                    "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                    "--opt", "o=" + ",".join(options), docker_volume,
                )  # fmt: skip
                return {"type": "volume", "src": docker_volume}
            path = os.path.join(self.set.work, "pods", f"{self.name}-{self.incarnation}", name)
            os.makedirs(path, exist_ok=True)
            self._own(path, fs_group, 0o2777)
            return {"type": "bind", "src": path}
        if "secret" in volume:
            secret = volume["secret"]
            data = self.set.secrets[secret["secretName"]]
            path = os.path.join(self.set.work, "pods", f"{self.name}-{self.incarnation}", name)
            os.makedirs(path, exist_ok=True)
            items = secret.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                file = os.path.join(path, item["path"])
                with open(file, "w") as out:
                    out.write(data[item["key"]])
                self._own(file, fs_group, item.get("mode", secret.get("defaultMode", 0o644)))
            return {"type": "bind", "src": path, "readonly": True}
        raise ValueError(f"volume {name}: a kind this run does not know")

    @staticmethod
    def _own(path, group, mode):
        if group is not None:
            os.chown(path, 0, group)
        os.chmod(path, mode)

    def mount(self, mount):
        if not hasattr(self, "_sources"):
            self._sources = {}
        name = mount["name"]
        if name not in self._sources:
            self._sources[name] = self.volume_source(name)
        source = self._sources[name]
        spec = f"type={source['type']},src={source['src']},dst={mount['mountPath']}"
        if source["type"] == "volume":
            # An emptyDir starts empty: Docker must not copy the image's directory into it, nor
            # that directory's owner and mode onto it.
            spec += ",volume-nocopy"
        if mount.get("readOnly") or source.get("readonly"):
            spec += ",readonly"
        return spec

    def create(self):
        """The StatefulSet creates the pod: fresh emptyDirs, the same claim, containers in order."""
        self.incarnation += 1
        self._sources = {}
        self.containers = {}
        for spec in self.set.template_spec["containers"]:
            container = Container(self, spec)
            if container.security.get("runAsNonRoot") and container.security.get("runAsUser") == 0:
                raise ValueError(f"{container.name}: runAsNonRoot with runAsUser 0")
            self.containers[container.name] = container
            self.set.docker(*container.run_argv())

    def remove(self):
        for container in self.containers.values():
            self.set.docker("rm", "-f", container.docker_name, check=False)
        for source in getattr(self, "_sources", {}).values():
            if source["type"] == "volume":
                self.set.docker("volume", "rm", "-f", source["src"], check=False)

    def kill(self):
        """SIGKILL to every container, as when the node loses the pod's processes."""
        for container in self.containers.values():
            self.set.docker("kill", container.docker_name, check=False)

    def delete(self):
        """Graceful deletion: preStop hooks, SIGTERM, SIGKILL after the grace period."""
        threads = []
        grace = self.set.grace_seconds
        for container in self.containers.values():
            sleep = (container.spec.get("lifecycle") or {}).get("preStop", {}).get("sleep", {})
            delay = int(sleep.get("seconds", 0))

            def stop(c=container, delay=delay):
                time.sleep(delay)
                self.set.docker(
                    "stop", "-t", str(max(0, grace - delay)), c.docker_name,
                    check=False, timeout=grace + 30,
                )  # fmt: skip

            threads.append(threading.Thread(target=stop))
        for t in threads:
            t.start()
        return threads

    def state(self, container):
        return self.set.docker.inspect(self.containers[container].docker_name, "{{.State.Status}}")

    def exit_code(self, container):
        name = self.containers[container].docker_name
        code = self.set.docker.inspect(name, "{{.State.ExitCode}}")
        return int(code) if code is not None else None


class PodSet:
    def __init__(self, docs, docker, work, run_id):
        self.docs = docs
        self.docker = docker
        self.work = work
        self.run_id = run_id
        self.prefix = f"ifc{run_id[-6:].lower()}-"
        sets = [
            d
            for d in docs
            if d["kind"] == "StatefulSet"
            and {c["name"] for c in d["spec"]["template"]["spec"]["containers"]}
            >= {"graphserver", "agent"}
        ]
        if len(sets) != 1:
            raise ValueError("the chart renders no single StatefulSet with graphserver and agent")
        self.sts = sets[0]
        self.sts_name = self.sts["metadata"]["name"]
        self.template = self.sts["spec"]["template"]
        self.template_spec = self.template["spec"]
        self.pod_security = self.template_spec.get("securityContext") or {}
        self.grace_seconds = int(self.template_spec.get("terminationGracePeriodSeconds", 30))
        self.secrets = {
            d["metadata"]["name"]: {
                k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()
            }
            for d in docs
            if d["kind"] == "Secret"
        }
        graphserver = self.spec_of("graphserver")
        self.http_port = next(
            p["containerPort"] for p in graphserver.get("ports") or [] if p.get("name") == "http"
        )
        self.pods = [Pod(self, i) for i in range(int(self.sts["spec"]["replicas"]))]

    def spec_of(self, name):
        return next(c for c in self.template_spec["containers"] if c["name"] == name)

    def agent_flag(self, flag):
        for arg in self.spec_of("agent").get("args") or []:
            if arg.startswith(f"--{flag}="):
                return arg.split("=", 1)[1]
        return None

    def services(self):
        return [d for d in self.docs if d["kind"] == "Service"]

    def selects(self, service):
        selector = service["spec"].get("selector") or {}
        labels = self.template["metadata"]["labels"]
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    def service_url(self, service, pods):
        """A Service's address as the ready pods behind it, comma-separated."""
        port = service["spec"]["ports"][0]
        target = port.get("targetPort", port["port"])
        urls = []
        for pod in pods:
            host_port = pod.container("graphserver").host_port(target)
            urls.append(f"http://127.0.0.1:{host_port}")
        return ",".join(urls)


# -- Observing the cluster ----------------------------------------------------------------------


def readyz(pod):
    status, body = http("GET", pod.url + "/readyz", timeout=2)
    return status, body if isinstance(body, dict) else {}


def cluster_view(pods):
    """{pod name: (ready status, leader, term, role)} from every graphserver's /readyz."""
    view = {}
    for pod in pods:
        status, body = readyz(pod)
        view[pod.name] = (status, body.get("leader", ""), body.get("term", 0), body.get("role", ""))
    return view


def agreed_leader(pods, view=None):
    """(leader, term) when every pod is ready and names the same leader, and that one leads."""
    view = view or cluster_view(pods)
    leaders = {(leader, term) for status, leader, term, _ in view.values() if status == 200}
    if len(leaders) != 1 or any(status != 200 for status, *_ in view.values()):
        return None
    leader, term = next(iter(leaders))
    roles = {name: role for name, (_, _, _, role) in view.items()}
    if not leader or roles.get(leader) != "leader":
        return None
    if sum(1 for r in roles.values() if r == "leader") != 1:
        return None
    return leader, term


def wait_for_leader(pods, timeout, not_leader=None, min_term=0, interval=0.01):
    """Polls until the pods agree on a leader; (leader, term, seconds) or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        agreed = agreed_leader(pods)
        if agreed and agreed[0] != not_leader and agreed[1] > min_term:
            return agreed[0], agreed[1], time.monotonic() - start
        time.sleep(interval)
    return None


class Writer(threading.Thread):
    """Creates entities through one pod without pause; keeps the ids the cluster acknowledged."""

    def __init__(self, pod, label):
        super().__init__(daemon=True)
        self.pod = pod
        self.label = label
        self.acked = {}
        self.refused = 0
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            attributes = {"name": f"{self.label}-{n}", "seq": n}
            status, body = http(
                "POST", self.pod.url + "/api/graph/entities/user/create", attributes, timeout=8
            )
            if status == 200 and isinstance(body, int):
                self.acked[body] = attributes
            else:
                self.refused += 1
                time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.join(timeout=15)


def missing_on(pods, acked, patience=3.0):
    """{pod: ids it cannot read, or why not}, for writes the cluster acknowledged. Reads may come
    from the replica, which may lag by a moment: a pod gets `patience` seconds to show them all."""
    deadline = time.monotonic() + patience
    while True:
        problems = read_back(pods, acked)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.2)


def read_back(pods, acked):
    ids = sorted(acked)
    problems = {}
    for pod in pods:
        found = {}
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            status, body = http("POST", pod.url + "/api/graph/entities", chunk, timeout=10)
            if status != 200 or not isinstance(body, list):
                problems[pod.name] = f"read answered {status}: {str(body)[:120]}"
                break
            for entity in body:
                found[entity.get("id")] = entity
        else:
            lost = [
                i
                for i in ids
                if i not in found
                or any(found[i].get("attributes", {}).get(k) != v for k, v in acked[i].items())
            ]
            if lost:
                problems[pod.name] = f"{len(lost)} of {len(ids)} missing or different: {lost[:5]}"
    return problems


def rows_in_database(database, ids):
    host, port, user, password = database.split(":", 3)
    if not ids:
        return 0
    query = f"SELECT COUNT(*) FROM entities WHERE id IN ({','.join(str(i) for i in sorted(ids))})"
    result = subprocess.run(
        ["mariadb", "--no-defaults", f"-h{host}", f"-P{port}", f"-u{user}", f"-p{password}",
         "-N", "-B", "instaface", "-e", query],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return int(result.stdout.strip())


# -- The checks ---------------------------------------------------------------------------------


class Checks:
    def __init__(self, pods):
        self.pod_set = pods
        self.passed = 0
        self.failed = 0

    def report(self, ok, text, logs_of=()):
        print(f"{'ok  ' if ok else 'FAIL'} {text}", flush=True)
        if ok:
            self.passed += 1
            return
        self.failed += 1
        for name in logs_of:
            tail = self.pod_set.docker.logs(name, 12)
            print(f"     --- docker logs {name}", flush=True)
            for line in dedupe(tail.splitlines()):
                print(f"     | {line}", flush=True)

    def run(self, name, function, *args):
        try:
            function(*args)
        except Exception as e:  # a broken check is a failed check, and the others still run
            self.report(False, f"{name}: {type(e).__name__}: {e}")


def dedupe(lines):
    """Log lines with repeats of the line before folded into a count."""
    out = []
    for line in lines:
        if out and out[-1][0] == line:
            out[-1][1] += 1
        else:
            out.append([line, 1])
    return [line if n == 1 else f"{line} (x{n})" for line, n in out]


def container_names(pods):
    return [c.docker_name for p in pods for c in p.containers.values()]


def check_images(ps, checks):
    """Each image: ldd of its binaries finds everything, and it installs nothing else."""
    images = sorted(
        {c["image"] for c in ps.template_spec["containers"]}
        | {
            c["image"]
            for d in ps.docs
            if d["kind"] == "Pod"
            for c in d["spec"]["containers"]
        }
    )
    base = image_packages(ps.docker, "debian:bookworm-slim")
    base_size = int(ps.docker.inspect("debian:bookworm-slim", "{{.Size}}"))
    for image in images:
        size = int(ps.docker.inspect(image, "{{.Size}}"))
        script = r"""
set -e
for b in /usr/local/bin/*; do echo "== $b"; ldd "$b"; done
echo "== packages"
dpkg-query -W -f '${Package}\t${Depends}, ${Pre-Depends}\n'
echo "== owners"
libs=$(for b in /usr/local/bin/*; do ldd "$b"; done | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p')
for lib in $(echo "$libs" | sort -u); do
  real=$(readlink -f "$lib")
  dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$real" 2>/dev/null \
    || dpkg-query -S "/usr$lib" 2>/dev/null || echo "?: $lib"
done
echo "== local"
ls /usr/local/lib
echo "== apt"
du -sk /var/cache/apt /var/lib/apt/lists
"""
        # As root: apt keeps a directory only root may read.
        result = ps.docker("run", "--rm", "--network", "host", "--user", "0",
                           "--entrypoint", "/bin/sh", image, "-c", script, check=False)  # fmt: skip
        if result.returncode != 0:
            checks.report(False, f"image {image}: inspecting it failed: {result.stderr.strip()}")
            continue
        sections, current = {}, None
        for line in result.stdout.splitlines():
            if line.startswith("== "):
                current = line[3:]
                sections[current] = []
            elif current:
                sections[current].append(line)
        binaries = [s for s in sections if s.startswith("/")]
        not_found = [f"{b}: {l.strip()}" for b in binaries for l in sections[b] if "not found" in l]
        depends = {}
        for line in sections.get("packages", []):
            name, _, deps = line.partition("\t")
            depends[name] = [
                re.sub(r"\(.*?\)", "", alt).strip().split(":")[0]
                for clause in deps.split(",")
                for alt in clause.split("|")
                if alt.strip()
            ]
        owners, unowned = set(), []
        for line in sections.get("owners", []):
            pkg, _, path = line.partition(": ")
            if pkg == "?":
                unowned.append(path)
            else:
                owners.update(p.strip().split(":")[0] for p in pkg.split(","))
        # What the libraries' packages need, and nothing else, beyond bookworm-slim.
        needed, todo = set(), list(owners)
        while todo:
            pkg = todo.pop()
            if pkg in needed:
                continue
            needed.add(pkg)
            todo.extend(depends.get(pkg, []))
        extra = sorted(set(depends) - base - needed)
        loaded = {
            os.path.basename(l.split("=>")[0].strip())
            for b in binaries
            for l in sections[b]
            if "=>" in l
        }
        local = [l for l in sections.get("local", []) if l.endswith(".so") or ".so." in l]
        stray_local = sorted(set(local) - loaded)
        project_unowned = [p for p in unowned if not p.startswith("/usr/local/lib/")]
        problems = not_found + [f"extra package {p}" for p in extra]
        problems += [f"{p} belongs to no package" for p in project_unowned]
        problems += [f"/usr/local/lib/{p} is loaded by no binary" for p in stray_local]
        # Package lists and caches are for installing, not for running.
        for line in sections.get("apt", []):
            kib, _, path = line.partition("\t")
            if kib.isdigit() and int(kib) > 1024:
                problems.append(f"{path} holds {int(kib) / 1024:.0f} MiB")
        added = sorted(set(depends) - base)
        checks.report(
            not problems,
            f"image {image}: {size / 1e6:.1f} MB ({(size - base_size) / 1e6:+.1f} MB over "
            f"bookworm-slim's {base_size / 1e6:.1f}); {len(binaries)} binaries, ldd finds every "
            f"library; no apt caches; adds only {', '.join(added) or 'nothing'}"
            + (f", and {', '.join(sorted(local))} in /usr/local/lib" if local else "")
            + (f": {'; '.join(problems)}" if problems else ""),
        )


def image_packages(docker, image):
    result = docker("run", "--rm", "--network", "host", "--entrypoint", "dpkg-query", image,
                    "-W", "-f", "${Package}\n")  # fmt: skip
    return set(result.stdout.split())


def wait_until_ready(ps, pods, timeout=150):
    """Startup and readiness probes of every container, as the kubelet would wait for them."""
    start = time.monotonic()
    pending = {(p.name, c.name): c for p in pods for c in p.containers.values()}
    last = {}
    while pending and time.monotonic() - start < timeout:
        for key, container in list(pending.items()):
            ok_start, why_start = container.probe("startupProbe")
            ok_ready, why_ready = (False, why_start)
            if ok_start:
                ok_ready, why_ready = container.probe("readinessProbe")
            last[key] = why_ready
            if ok_ready:
                del pending[key]
        time.sleep(0.25)
    return time.monotonic() - start, {f"{p}/{c}": last.get((p, c)) for p, c in pending}


def check_startup(ps, checks):
    for pod in ps.pods:
        pod.create()
    seconds, pending = wait_until_ready(ps, ps.pods)
    checks.report(
        not pending,
        f"{len(ps.pods)} pods of 2 containers started; every startup and readiness probe "
        f"passes after {seconds:.1f} s"
        + (f": still failing {pending}" if pending else ""),
        logs_of=container_names(ps.pods) if pending else (),
    )


def check_replica_reads(ps, checks):
    """graphserver.extraEnv gives every graphserver the GTID replica to read from."""
    without = [
        pod.name
        for pod in ps.pods
        if ", read replica" not in ps.docker.logs(pod.container("graphserver").docker_name, 50)
    ]
    host, port = ps.replica.split(":")[:2]
    checks.report(
        not without,
        f"every graphserver reads from the GTID replica at {host}:{port} (graphserver.extraEnv "
        "ConnectionStrings__ReadReplica)" + (f": not {without}" if without else ""),
    )


def check_confinement(ps, checks):
    uid = ps.pod_security.get("runAsUser")
    for pod in ps.pods:
        problems, summary = [], []
        for container in pod.containers.values():
            name = container.docker_name
            s = container.security
            status = ps.docker("exec", name, "cat", "/proc/1/status", check=False).stdout
            fields = dict(
                line.split(":", 1) for line in status.splitlines() if ":" in line
            )
            uids = fields.get("Uid", "").split()
            gids = fields.get("Gid", "").split()
            want_uid = str(s.get("runAsUser"))
            if not uids or set(uids) != {want_uid} or want_uid == "0":
                problems.append(f"{container.name} runs as uid {uids}, not {want_uid}")
            if s.get("runAsGroup") is not None and set(gids) != {str(s["runAsGroup"])}:
                problems.append(f"{container.name} runs as gid {gids}")
            if "ALL" in ((s.get("capabilities") or {}).get("drop") or []):
                for field in ("CapEff", "CapPrm", "CapBnd"):
                    value = fields.get(field, "?").strip()
                    if value != "0" * len(value) or not value:
                        problems.append(f"{container.name} has {field} {value}")
            no_new_privileges = fields.get("NoNewPrivs", "").strip() == "1"
            if s.get("allowPrivilegeEscalation") is False and not no_new_privileges:
                problems.append(f"{container.name} may gain privileges")
            if fields.get("Seccomp", "").strip() != "2":
                problems.append(f"{container.name} has no seccomp filter")
            write = ps.docker("exec", name, "touch", "/.instaface-write-test", check=False)
            if s.get("readOnlyRootFilesystem"):
                if write.returncode == 0 or "Read-only file system" not in write.stderr:
                    problems.append(f"{container.name} can write its root: {write.stderr.strip()}")
            summary.append(container.name)
        checks.report(
            not problems,
            f"{pod.name}: {' and '.join(summary)} run as uid {uid}, no capabilities, "
            f"no-new-privileges, seccomp filter, read-only root"
            + (f": {'; '.join(problems)}" if problems else ""),
        )


def check_probes(ps, checks):
    failing = []
    for pod in ps.pods:
        for container in pod.containers.values():
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if container.spec.get(kind):
                    ok, why = container.probe(kind)
                    if not ok:
                        failing.append(f"{pod.name}/{container.name} {kind}: {why}")
    agent = ps.spec_of("agent")
    command = " ".join(((agent.get("livenessProbe") or {}).get("exec") or {}).get("command") or [])
    checks.report(
        not failing,
        f"every probe of every container passes (agent liveness: {command})"
        + (f": {failing}" if failing else ""),
    )


def check_one_leader(ps, checks):
    agreed = agreed_leader(ps.pods)
    views = {}
    problems = []
    # Only the leader hears from every peer (heartbeat acks); a follower hears from the leader and
    # from no other follower, so what followers say of each other is shown, not checked.
    between_followers = {}
    for pod in ps.pods:
        # The cluster as this graphserver's agent sees it (nodes by URL and id), over the socket.
        status, body = http("GET", pod.url + "/api/timeline/cluster")
        views[pod.name] = body
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("nodes"), list):
            problems.append(f"{pod.name} /api/timeline/cluster answered {status}")
            continue
        ids = {n.get("url"): n.get("id") for n in body["nodes"] if isinstance(n, dict)}
        me = [n.get("id") for n in body["nodes"] if isinstance(n, dict) and n.get("self")]
        if me != [pod.name]:
            problems.append(f"{pod.name} says it is {me!r}")
        if len(body["nodes"]) != len(ps.pods):
            problems.append(f"{pod.name} knows {len(body['nodes'])} nodes (its agent's peers)")
        unreachable = [ids.get(u, u) for u in body.get("unreachable") or []]
        if agreed and pod.name == agreed[0] and unreachable:
            problems.append(f"the leader {pod.name} cannot reach {unreachable}")
        elif agreed and agreed[0] in unreachable:
            problems.append(f"{pod.name} cannot reach the leader {agreed[0]}")
        elif unreachable:
            between_followers[pod.name] = unreachable
        leader = ids.get(body.get("leader"), body.get("leader"))
        if agreed and (leader, body.get("term")) != agreed:
            problems.append(f"{pod.name} names {leader} in term {body.get('term')}")
    if not agreed:
        problems.append(f"no agreed leader: {cluster_view(ps.pods)}")
    text = (
        f"one leader among {len(ps.pods)} pods: {agreed[0]} in term {agreed[1]}, on every "
        "graphserver's /readyz (shared memory) and /api/timeline/cluster (control socket); the "
        "leader reaches every peer and every follower the leader"
        + (
            "; followers list as unreachable "
            + ", ".join(f"{k}: {v}" for k, v in sorted(between_followers.items()))
            if between_followers
            else ""
        )
        if agreed
        else f"one leader among {len(ps.pods)} pods"
    )
    checks.report(
        not problems,
        text + (f": {'; '.join(problems)}" if problems else ""),
        logs_of=container_names(ps.pods) if problems else (),
    )
    return agreed


def pod_named(ps, name):
    return next(p for p in ps.pods if p.name == name)


def check_follower_writes(ps, checks):
    agreed = agreed_leader(ps.pods)
    if not agreed:
        checks.report(False, "writes through a follower: no leader")
        return
    follower = next(p for p in ps.pods if p.name != agreed[0])
    acked, problems = {}, []
    for n in range(20):
        attributes = {"name": f"through-{follower.name}-{n}", "n": n}
        status, body = http("POST", follower.url + "/api/graph/entities/user/create", attributes)
        if status == 200 and isinstance(body, int):
            acked[body] = attributes
        else:
            problems.append(f"create answered {status}: {body}")
            break
    ids = sorted(acked)
    if len(ids) >= 2:
        status, body = http(
            "POST",
            follower.url + f"/api/graph/associations/friend/from/{ids[0]}/to/{ids[1]}",
            {"since": 2024},
        )
        if status != 200:
            problems.append(f"association create answered {status}: {body}")
    missing = missing_on(ps.pods, acked)
    problems += [f"{name}: {why}" for name, why in missing.items()]
    deadline = time.monotonic() + 3
    while True:
        answers = set()
        for pod in ps.pods:
            status, body = http("POST", pod.url + "/api/graph/entities/friend", ids[:1])
            answers.add(json.dumps(body, sort_keys=True) if status == 200 else f"status {status}")
        same = len(answers) == 1 and "since" in next(iter(answers))
        if same or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not same:
        problems.append(f"the association reads differ or lack it: {answers}")
    checks.report(
        not problems,
        f"{len(acked)} entities and 1 association written through follower {follower.name} "
        f"(leader {agreed[0]}); the same rows read back on every pod"
        + (f": {'; '.join(problems)}" if problems else ""),
    )


def failover(ps, checks, what, disrupt, restore, graceful=False, stopped_logs=()):
    """Disrupts the leader while a follower takes writes; checks the new leader and the writes."""
    agreed = agreed_leader(ps.pods)
    if not agreed:
        checks.report(False, f"{what}: no leader to start from: {cluster_view(ps.pods)}")
        return
    leader_name, term = agreed
    leader = pod_named(ps, leader_name)
    others = [p for p in ps.pods if p is not leader]
    writer = Writer(others[0], what.split()[0])
    writer.start()
    time.sleep(1.0)
    before = len(writer.acked)
    started = time.monotonic()
    handle = disrupt(leader)
    found = wait_for_leader(
        others, timeout=15, not_leader=leader_name, min_term=term, interval=0.005
    )
    took_ms = (time.monotonic() - started) * 1000
    time.sleep(1.0)
    writer.stop()
    problems = []
    if not found:
        problems.append(f"no new leader within 15 s: {cluster_view(others)}")
    new_leader, new_term = (found[0], found[1]) if found else ("?", 0)
    extra = restore(leader, handle, problems)
    missing = missing_on(ps.pods, writer.acked)
    problems += [f"{name}: {why}" for name, why in missing.items()]
    for label, database in (("MariaDB", ps.database), ("its GTID replica", ps.replica)):
        try:
            deadline = time.monotonic() + 5
            while True:
                rows = rows_in_database(database, writer.acked)
                if rows == len(writer.acked) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if rows != len(writer.acked):
                problems.append(f"{len(writer.acked) - rows} acknowledged writes are not in {label}")
        except Exception as e:
            problems.append(f"reading {label}: {e}")
    after = len(writer.acked) - before
    if before == 0 or after == 0:
        problems.append(f"the writer got {before} acknowledgements before and {after} after")
    min_ms = int(ps.agent_flag("election-min-ms") or 0)
    if graceful and found and took_ms >= min_ms:
        problems.append(f"{took_ms:.0f} ms is an election timeout (>= {min_ms} ms), not a transfer")
    if problems:
        for log_text in stopped_logs:
            problems.append("the stopped agent's log: " + " | ".join(dedupe(log_text.splitlines())))
    checks.report(
        not problems,
        f"{what} ({leader_name}, term {term}): {new_leader} leads term {new_term} after "
        f"{took_ms:.0f} ms; {len(writer.acked)} writes acknowledged through {others[0].name}, "
        f"{writer.refused} refused, none lost (every pod reads them, MariaDB and the replica hold "
        f"them){extra}"
        + (f": {'; '.join(problems)}" if problems else ""),
        logs_of=container_names(ps.pods) if problems else (),
    )


def kill_agent(ps, checks):
    heartbeat_ms = int(ps.agent_flag("heartbeat-ms") or 500)

    def disrupt(leader):
        ps.docker("kill", leader.container("agent").docker_name)
        return time.monotonic()

    def restore(leader, killed_at, problems):
        # The graphserver beside the dead agent still maps its segment. Its lease has run out (a
        # new leader was elected, which waits for it), so it must not take a write.
        status, body = http(
            "POST", leader.url + "/api/graph/entities/user/create", {"name": "orphan"}, timeout=8
        )
        if status == 200:
            problems.append(f"{leader.name}'s graphserver took a write beside a dead agent: {body}")
        # The segment turns stale after 3 heartbeats without a liveness stamp; from then on the
        # graphserver is not ready and names no leader it could forward to.
        deadline = killed_at + (3 * heartbeat_ms + 2000) / 1000
        while True:
            ready, answer = readyz(leader)
            if (ready != 200 and answer.get("stale")) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        stale_ms = (time.monotonic() - killed_at) * 1000
        if ready == 200 or not answer.get("stale"):
            problems.append(f"{leader.name}'s graphserver never saw its agent die: {answer}")
        # restartPolicy Always: the kubelet starts the container again in the same pod.
        ps.docker("start", leader.container("agent").docker_name)
        seconds, pending = wait_until_ready(ps, [leader], timeout=60)
        if pending or not agreed_leader(ps.pods):
            problems.append(f"the restarted agent did not rejoin: {pending or cluster_view(ps.pods)}")
        return (
            f"; beside the dead agent a write got {status}, and /readyz turned {ready} (stale) "
            f"{stale_ms:.0f} ms after the kill; restarted, rejoined in {seconds:.1f} s"
        )

    failover(ps, checks, "kill -9 of the leader's agent container", disrupt, restore)


def kill_pod(ps, checks):
    def disrupt(leader):
        leader.kill()

    def restore(leader, _, problems):
        leader.remove()
        leader.create()
        seconds, pending = wait_until_ready(ps, [leader], timeout=90)
        if pending or not agreed_leader(ps.pods):
            problems.append(f"the recreated pod did not rejoin: {pending or cluster_view(ps.pods)}")
        return f"; pod recreated with its claim, ready in {seconds:.1f} s"

    failover(ps, checks, "kill -9 of the whole leader pod", disrupt, restore)


def stop_pod(ps, checks):
    def disrupt(leader):
        return leader.delete()

    def restore(leader, threads, problems):
        for t in threads:
            t.join(timeout=ps.grace_seconds + 40)
        codes = {name: leader.exit_code(name) for name in leader.containers}
        for name, code in codes.items():
            if code != 0:
                problems.append(f"{leader.name}/{name} exited {code} after SIGTERM")
        # The stopped agent's own account of the hand-over, for a failure below.
        stopped_logs.append(ps.docker.logs(leader.container("agent").docker_name, 12))
        leader.remove()
        leader.create()
        seconds, pending = wait_until_ready(ps, [leader], timeout=90)
        if pending or not agreed_leader(ps.pods):
            problems.append(f"the recreated pod did not rejoin: {pending or cluster_view(ps.pods)}")
        return f"; exit codes {codes}; recreated, ready in {seconds:.1f} s"

    stopped_logs = []
    failover(
        ps, checks, "docker stop (SIGTERM) of the leader pod", disrupt, restore,
        graceful=True, stopped_logs=stopped_logs,
    )  # fmt: skip


def check_smoke_test(ps, checks):
    """The chart's `helm test` Pod: the bot through the API Service (its ready endpoints)."""
    tests = [
        d
        for d in ps.docs
        if d["kind"] == "Pod"
        and (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]
    if not tests:
        checks.report(True, "no helm test Pod rendered")
        return
    pod_doc = tests[0]
    spec = pod_doc["spec"]["containers"][0]
    args = []
    for arg in spec.get("args") or []:
        for service in ps.services():
            name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
            host = f"http://{name}.{ps.namespace}.svc:{port}"
            if host in arg and ps.selects(service):
                arg = arg.replace(host, ps.service_url(service, ps.pods))
        args.append(arg)
    name = f"{ps.prefix}{pod_doc['metadata']['name']}"
    argv = ["run", "--name", name, "--label", f"instaface.run={ps.run_id}", "--network", "host"]
    argv += confinement_argv(spec, pod_doc["spec"].get("securityContext") or {})
    argv += [spec["image"]] + args
    duration = next((int(a.split("=")[1]) for a in args if a.startswith("--duration=")), 10)
    result = ps.docker(*argv, check=False, timeout=duration + 60)
    summary = next((l for l in result.stdout.splitlines() if l.startswith("bot-summary")), "")
    checks.report(
        result.returncode == 0 and bool(summary),
        f"helm test Pod ({spec['image']}) through the API Service: exit {result.returncode}; "
        f"{summary}"
        + ("" if result.returncode == 0 else f": {(result.stdout + result.stderr)[-400:]}"),
    )
    ps.docker("rm", "-f", name, check=False)


def prometheus_targets(ps):
    """What Prometheus' kubernetes-pods and kubernetes-service-endpoints jobs would scrape."""
    targets = []
    annotations = ps.template["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") == "true":
        for pod in ps.pods:
            port = pod.ports[int(annotations["prometheus.io/port"])]
            targets.append(("kubernetes-pods", pod.name, f"127.0.0.1:{port}",
                            annotations.get("prometheus.io/path", "/metrics")))  # fmt: skip
    for service in ps.services():
        notes = service["metadata"].get("annotations") or {}
        if notes.get("prometheus.io/scrape") == "true" and ps.selects(service):
            for pod in ps.pods:
                port = pod.ports[int(notes["prometheus.io/port"])]
                targets.append(("kubernetes-service-endpoints", pod.name, f"127.0.0.1:{port}",
                                notes.get("prometheus.io/path", "/metrics")))  # fmt: skip
    return targets


def start_prometheus(ps, work):
    targets = prometheus_targets(ps)
    jobs = {}
    for job, pod, address, path in targets:
        jobs.setdefault((job, path), []).append({"targets": [address], "labels": {"pod": pod}})
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": job, "metrics_path": path, "static_configs": groups}
            for (job, path), groups in jobs.items()
        ],
    }
    os.makedirs(os.path.join(work, "prometheus"), exist_ok=True)
    config_file = os.path.join(work, "prometheus", "prometheus.yml")
    with open(config_file, "w") as out:
        yaml.safe_dump(config, out)
    port = free_port()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config_file}",
         f"--storage.tsdb.path={os.path.join(work, 'prometheus', 'data')}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(os.path.join(work, "prometheus.log"), "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    with open(os.path.join(work, "prometheus.pid"), "w") as out:
        out.write(str(process.pid))
    return process, port, targets


def check_prometheus(ps, checks, port, targets):
    deadline = time.monotonic() + 20
    up = {}
    while time.monotonic() < deadline:
        status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/query?query=up")
        if status == 200 and isinstance(body, dict):
            up = {
                (r["metric"].get("job"), r["metric"].get("instance")): r["value"][1]
                for r in body.get("data", {}).get("result", [])
            }
            if all(up.get((job, address)) == "1" for job, _, address, _ in targets):
                break
        time.sleep(0.5)
    down = [
        f"{job} {pod} {address}"
        for job, pod, address, _ in targets
        if up.get((job, address)) != "1"
    ]
    agents = sum(1 for t in targets if t[0] == "kubernetes-pods")
    servers = len(targets) - agents
    checks.report(
        not down and targets,
        f"Prometheus scrapes every agent ({agents}, pod annotations) and every graphserver "
        f"({servers}, API Service annotations): up == 1 for all {len(targets)}"
        + (f": down {down}" if down else ""),
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docker", required=True)
    parser.add_argument("--rendered", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--database", required=True, help="host:port:user:password of MariaDB")
    parser.add_argument("--replica", required=True, help="the same of its GTID replica")
    parser.add_argument("--namespace", default="graph")
    args = parser.parse_args()

    docs = [d for d in yaml.safe_load_all(open(args.rendered)) if d]
    docker = Docker(args.docker, args.run_id)
    ps = PodSet(docs, docker, args.work, args.run_id)
    ps.database = args.database
    ps.replica = args.replica
    ps.namespace = args.namespace
    checks = Checks(ps)
    prometheus = None
    try:
        checks.run("images", check_images, ps, checks)
        checks.run("start-up", check_startup, ps, checks)
        checks.run("replica", check_replica_reads, ps, checks)
        prometheus, prom_port, targets = start_prometheus(ps, args.work)
        checks.run("confinement", check_confinement, ps, checks)
        checks.run("probes", check_probes, ps, checks)
        checks.run("one leader", check_one_leader, ps, checks)
        checks.run("follower writes", check_follower_writes, ps, checks)
        checks.run("agent kill", kill_agent, ps, checks)
        checks.run("pod kill", kill_pod, ps, checks)
        checks.run("pod stop", stop_pod, ps, checks)
        checks.run("one leader after the failovers", check_one_leader, ps, checks)
        checks.run("helm test", check_smoke_test, ps, checks)
        checks.run("prometheus", check_prometheus, ps, checks, prom_port, targets)
    except KeyboardInterrupt:
        log("interrupted; removing the pods")
        checks.failed += 1
    finally:
        for pod in ps.pods:
            pod.remove()
        if prometheus:
            prometheus.terminate()
            prometheus.wait(timeout=30)
    print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
