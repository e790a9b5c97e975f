#!/usr/bin/env python3
"""Checks the instaface Helm chart: lint, render-and-assert, and schema rejections.

  chart_test.py --helm HELM --chart DIR lint [VALUES...]
  chart_test.py --helm HELM --chart DIR render [--values FILE]
  chart_test.py --helm HELM --chart DIR reject --expect TEXT (--set K=V | --values FILE)...

Helm runs with its cache, config and data homes in a temporary directory, so nothing outside it
is read or written. Exits non-zero with one line per broken expectation.
"""

import argparse
import base64
import copy
import os
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("chart_test.py: python3 yaml is missing (Debian: apt-get install python3-yaml)")

RELEASE = "it"
NAMESPACE = "graph"
APP_UID = 10001

# Values that hold credentials; whatever they are set to may appear only inside Secret objects.
SECRET_VALUE_PATHS = [
    ("clusterSecret", "value"),
    ("redis", "auth", "password"),
    ("mysql", "auth", "password"),
    ("mysql", "auth", "rootPassword"),
]


class Failures:
    def __init__(self):
        self.items = []

    def check(self, condition, message):
        if not condition:
            self.items.append(message)
        return condition


def run_helm(helm, args):
    with tempfile.TemporaryDirectory(prefix="instaface-helm-") as home:
        env = dict(os.environ)
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = os.path.join(home, var.lower())
        # No cluster is ever contacted: point kubeconfig at nothing.
        env["KUBECONFIG"] = os.path.join(home, "no-kubeconfig")
        return subprocess.run([helm] + args, env=env, capture_output=True, text=True)


def deep_merge(base, override):
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dig(tree, path, default=None):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return default
        tree = tree[key]
    return tree


def flag_values(args):
    """--name=value arguments as a dict; repeated flags keep the last value."""
    flags = {}
    for arg in args or []:
        if arg.startswith("--") and "=" in arg:
            name, value = arg[2:].split("=", 1)
            flags[name] = value
    return flags


def env_map(container):
    return {e["name"]: e for e in container.get("env") or []}


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_workloads(docs):
    return [
        d for d in docs if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job", "Pod")
    ]


def template(workload):
    """The pod template of a controller, or a bare Pod as one."""
    if workload["kind"] == "Pod":
        return {"metadata": workload["metadata"], "spec": workload["spec"]}
    return workload["spec"]["template"]


def is_hook(doc):
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


def check_election_pods(docs, values, f):
    sets = [
        d
        for d in docs
        if d["kind"] == "StatefulSet"
        and {c["name"] for c in d["spec"]["template"]["spec"]["containers"]}
        >= {"graphserver", "agent"}
    ]
    if not f.check(
        len(sets) == 1, f"expected one StatefulSet with graphserver and agent, got {len(sets)}"
    ):
        return None
    sts = sets[0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    graphserver, agent = containers["graphserver"], containers["agent"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}

    # Cluster size: configured from the replica count, never discovered.
    expected = values["replicaCount"]
    agent_flags = flag_values(agent.get("args"))
    f.check(
        spec["replicas"] == expected,
        f"StatefulSet replicas {spec['replicas']} != replicaCount {expected}",
    )
    f.check(
        agent_flags.get("cluster-size") == str(spec["replicas"]),
        f"agent --cluster-size {agent_flags.get('cluster-size')} != replicas {spec['replicas']}",
    )
    f.check(
        spec.get("podManagementPolicy") == values["podManagementPolicy"],
        "podManagementPolicy does not follow the values",
    )
    f.check(
        pod.get("enableServiceLinks") is False,
        "service links are on: Service env vars would land in the INSTAFACE_* flag namespace",
    )
    f.check(
        pod.get("terminationGracePeriodSeconds", 0) >= 5,
        "terminationGracePeriodSeconds leaves the agent no time to transfer leadership",
    )

    # Shared memory: one memory-backed emptyDir at /dev/shm in both containers.
    shm_mounts = {}
    for name, container in containers.items():
        for mount in container.get("volumeMounts") or []:
            if mount["mountPath"] == "/dev/shm":
                shm_mounts[name] = mount["name"]
    f.check(
        set(shm_mounts) >= {"graphserver", "agent"},
        f"/dev/shm is mounted only in {sorted(shm_mounts)}",
    )
    if len(set(shm_mounts.values())) == 1:
        volume = volumes.get(next(iter(shm_mounts.values())), {})
        f.check(
            dig(volume, ["emptyDir", "medium"]) == "Memory",
            "the /dev/shm volume is not an emptyDir in Memory",
        )
    else:
        f.check(False, f"the containers mount different volumes at /dev/shm: {shm_mounts}")

    # The socket: same path for both, in a directory both mount from one emptyDir.
    gs_flags = flag_values(graphserver.get("args"))
    socket = agent_flags.get("socket")
    f.check(
        socket and gs_flags.get("socket") == socket, "graphserver and agent disagree on --socket"
    )
    f.check(
        gs_flags.get("shm") == agent_flags.get("shm"), "graphserver and agent disagree on --shm"
    )
    f.check(
        gs_flags.get("app-address")
        and gs_flags.get("app-address") == agent_flags.get("app-address"),
        "graphserver and agent disagree on --app-address",
    )
    f.check(
        dig(env_map(graphserver).get("POD_IP"), ["valueFrom", "fieldRef", "fieldPath"])
        == "status.podIP",
        "the graphserver's POD_IP does not come from status.podIP",
    )
    if socket:
        socket_dir = os.path.dirname(socket)
        owners = {}
        for name in ("graphserver", "agent"):
            for mount in containers[name].get("volumeMounts") or []:
                if mount["mountPath"] == socket_dir:
                    owners[name] = mount["name"]
        f.check(
            len(owners) == 2 and len(set(owners.values())) == 1,
            f"socket directory {socket_dir} is not one volume shared by both containers: {owners}",
        )
        if len(set(owners.values())) == 1:
            f.check(
                "emptyDir" in volumes.get(next(iter(owners.values())), {}),
                "the socket volume is not an emptyDir",
            )

    # Identity from the downward API.
    env = env_map(agent)
    f.check(agent_flags.get("id") == "$(POD_NAME)", "agent --id is not $(POD_NAME)")
    f.check(
        dig(env.get("POD_NAME"), ["valueFrom", "fieldRef", "fieldPath"]) == "metadata.name",
        "POD_NAME does not come from metadata.name",
    )
    f.check(
        "$(POD_IP)" in agent_flags.get("advertise", ""), "agent --advertise does not use $(POD_IP)"
    )
    f.check(
        dig(env.get("POD_IP"), ["valueFrom", "fieldRef", "fieldPath"]) == "status.podIP",
        "POD_IP does not come from status.podIP",
    )
    for flag in (
        "cluster",
        "listen",
        "app-address",
        "metrics",
        "state-dir",
        "secret-file",
        "heartbeat-ms",
        "election-min-ms",
        "election-max-ms",
        "app-liveness-ms",
    ):
        f.check(agent_flags.get(flag), f"agent has no --{flag}")
    f.check(
        agent_flags.get("heartbeat-ms") == str(values["agent"]["heartbeatMs"]),
        "agent --heartbeat-ms does not follow the values",
    )
    f.check(
        agent_flags.get("app-liveness-ms") == str(values["agent"].get("appLivenessMs")),
        "agent --app-liveness-ms does not follow the values",
    )

    # Durable votes: state dir on the claim when persistence is on.
    state_dir = agent_flags.get("state-dir")
    state_mount = next(
        (m for m in agent.get("volumeMounts") or [] if m["mountPath"] == state_dir), None
    )
    if f.check(state_mount is not None, "--state-dir is not on a mounted volume"):
        claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []}
        if values["persistence"]["enabled"]:
            f.check(
                state_mount["name"] in claims,
                "with persistence the state dir is not a volumeClaimTemplate",
            )
        else:
            f.check(
                "emptyDir" in volumes.get(state_mount["name"], {}),
                "without persistence the state dir is not an emptyDir",
            )

    # The cluster secret as a mounted Secret file.
    secret_file = agent_flags.get("secret-file", "")
    secret_mount = next(
        (
            m
            for m in agent.get("volumeMounts") or []
            if secret_file.startswith(m["mountPath"].rstrip("/") + "/")
        ),
        None,
    )
    if f.check(secret_mount is not None, "--secret-file is not on a mounted volume"):
        secret_volume = volumes.get(secret_mount["name"], {})
        secret_name = dig(secret_volume, ["secret", "secretName"])
        key = values["clusterSecret"]["key"]
        if values["clusterSecret"]["existingSecret"]:
            f.check(
                secret_name == values["clusterSecret"]["existingSecret"],
                "the cluster secret volume does not use clusterSecret.existingSecret",
            )
        else:
            f.check(
                any(
                    d["kind"] == "Secret"
                    and d["metadata"]["name"] == secret_name
                    and key in (d.get("data") or {})
                    for d in docs
                ),
                "the cluster secret volume names no rendered Secret holding the key",
            )
        f.check(
            secret_file.endswith("/" + key), "--secret-file does not name the cluster secret's key"
        )

    # Probes.
    f.check(
        dig(graphserver, ["livenessProbe", "httpGet", "path"]) == "/healthz",
        "graphserver liveness is not /healthz",
    )
    f.check(
        dig(graphserver, ["readinessProbe", "httpGet", "path"]) == "/readyz",
        "graphserver readiness is not /readyz",
    )
    f.check(
        dig(graphserver, ["startupProbe", "httpGet", "path"]) == "/healthz",
        "graphserver has no startup probe",
    )
    probe = dig(agent, ["livenessProbe", "exec", "command"]) or []
    if probe[:1] == ["instafacectl"]:
        # instafacectl takes its global flags before the subcommand, and must ask the socket: the
        # shared memory outlives a dead agent.
        f.check(
            probe[-1] == "status", f"the agent's liveness command does not end in 'status': {probe}"
        )
        f.check(
            f"--socket={socket}" in probe, "the agent's liveness does not ask the control socket"
        )
        f.check(
            not any(a.startswith("--shm") for a in probe),
            "the agent's liveness reads shared memory",
        )
    else:
        f.check(
            dig(agent, ["livenessProbe", "tcpSocket", "port"]) is not None,
            "the agent's liveness is neither instafacectl status nor a TCP check",
        )

    # The peers Service.
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    peers = services.get(spec.get("serviceName"))
    if f.check(peers is not None, "the StatefulSet's serviceName is not a rendered Service"):
        f.check(peers["spec"].get("clusterIP") == "None", "the peers Service is not headless")
        f.check(
            peers["spec"].get("publishNotReadyAddresses") is True,
            "the peers Service hides not-ready peers",
        )
    api = [
        s
        for s in services.values()
        if s is not peers
        and s["spec"].get("clusterIP") != "None"
        and labels_match(s["spec"].get("selector"), spec["template"]["metadata"]["labels"])
    ]
    f.check(len(api) == 1, "there is no single API Service in front of the graphservers")

    # PodDisruptionBudget.
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if values["podDisruptionBudget"]["enabled"]:
        if f.check(len(pdbs) == 1, "no PodDisruptionBudget"):
            pdb = pdbs[0]
            f.check(pdb["apiVersion"] == "policy/v1", "the PodDisruptionBudget is not policy/v1")
            f.check(
                pdb["spec"].get("maxUnavailable") == 1,
                "the PodDisruptionBudget allows more than one pod down",
            )
            f.check(
                labels_match(
                    pdb["spec"]["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]
                ),
                "the PodDisruptionBudget does not select the election pods",
            )
    else:
        f.check(not pdbs, "a PodDisruptionBudget is rendered while disabled")
    return sts


def check_containers(docs, f):
    for workload in pod_workloads(docs):
        pod = template(workload)["spec"]
        pod_ctx = pod.get("securityContext") or {}
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        for container in pod["containers"]:
            name = f"{where}/{container['name']}"
            ctx = container.get("securityContext") or {}
            effective = dict(pod_ctx, **ctx)
            if not is_hook(workload):  # a test Pod runs to completion and serves nothing
                f.check(container.get("livenessProbe"), f"{name} has no livenessProbe")
                f.check(container.get("readinessProbe"), f"{name} has no readinessProbe")
            f.check(effective.get("runAsNonRoot") is True, f"{name} may run as root")
            f.check(effective.get("runAsUser", 0) != 0, f"{name} runs as uid 0")
            f.check(
                ctx.get("allowPrivilegeEscalation") is False, f"{name} allows privilege escalation"
            )
            f.check(
                "ALL" in (dig(ctx, ["capabilities", "drop"]) or []),
                f"{name} keeps its capabilities",
            )
            f.check(
                dig(effective, ["seccompProfile", "type"]) == "RuntimeDefault",
                f"{name} has no RuntimeDefault seccomp",
            )
            f.check(
                ctx.get("readOnlyRootFilesystem") is True, f"{name} has a writable root filesystem"
            )
            f.check(
                container.get("resources", {}).get("requests"), f"{name} has no resource requests"
            )
            if container["name"] in ("graphserver", "agent"):
                f.check(
                    effective.get("runAsUser") == APP_UID, f"{name} does not run as uid {APP_UID}"
                )


def check_secrets(docs, values, f):
    secrets = [d for d in docs if d["kind"] == "Secret"]
    others = [d for d in docs if d["kind"] != "Secret"]
    other_text = "\n".join(yaml.safe_dump(d) for d in others)

    # Every secret value the chart holds stays inside its Secret, in plain or base64 form.
    stored = {}
    for secret in secrets:
        for key, encoded in (secret.get("data") or {}).items():
            stored[key] = base64.b64decode(encoded).decode()
        for key, plain in (secret.get("stringData") or {}).items():
            stored[key] = plain
    for key, plain in stored.items():
        encoded = base64.b64encode(plain.encode()).decode()
        f.check(
            plain not in other_text and encoded not in other_text,
            f"the value of Secret key {key} also appears outside Secret objects",
        )

    # Passwords given as values are in a Secret, and nowhere else.
    for path in SECRET_VALUE_PATHS:
        literal = dig(values, path)
        if not literal:
            continue
        dotted = ".".join(path)
        f.check(literal in stored.values(), f"{dotted} is not stored in a Secret")
        f.check(literal not in other_text, f"{dotted} appears outside Secret objects")

    # With existingSecret the chart holds no credential at all.
    all_existing = (
        values["clusterSecret"]["existingSecret"]
        and values["mysql"]["auth"]["existingSecret"]
        and (values["redis"]["auth"]["existingSecret"] or not values["redis"]["auth"]["enabled"])
    )
    if all_existing:
        f.check(
            not secrets,
            "every credential comes from an existing Secret, yet the chart renders a Secret",
        )

    # Credentials reach containers only through secretKeyRef; $(VAR) splices them into strings.
    refs = set()
    for workload in pod_workloads(docs):
        for container in template(workload)["spec"]["containers"]:
            name = f"{workload['metadata']['name']}/{container['name']}"
            for env in container.get("env") or []:
                ref = dig(env, ["valueFrom", "secretKeyRef"])
                if ref:
                    refs.add((ref["name"], ref["key"]))
                if any(w in env["name"].upper() for w in ("PASSWORD", "SECRET")):
                    f.check(ref is not None, f"{name} env {env['name']} is not a secretKeyRef")
                value = env.get("value") or ""
                if "password=" in value.lower():
                    after = value.lower().split("password=", 1)[1]
                    f.check(after.startswith("$("), f"{name} env {env['name']} inlines a password")
                if value.startswith("redis://") and "@" in value:
                    f.check(
                        value.split("://", 1)[1].startswith(":$("),
                        f"{name} env {env['name']} inlines a Redis password",
                    )
            for arg in (container.get("args") or []) + (container.get("command") or []):
                f.check(
                    not any(p in arg for p in stored.values() if p),
                    f"{name} has a secret in its arguments",
                )
    rendered = {(s["metadata"]["name"], k) for s in secrets for k in (s.get("data") or {})}
    for name, key in refs:
        existing = {
            values["clusterSecret"]["existingSecret"],
            values["mysql"]["auth"]["existingSecret"],
            values["redis"]["auth"]["existingSecret"],
        } - {""}
        f.check(
            (name, key) in rendered or name in existing,
            f"secretKeyRef {name}/{key} names neither a rendered Secret key nor an existingSecret",
        )


def check_dependencies(docs, values, sts, f):
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    workloads = pod_workloads(docs)
    components = {
        dig(w, ["spec", "template", "metadata", "labels", "app.kubernetes.io/component"])
        for w in workloads
    }
    agent = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "agent")
    graphserver = next(
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "graphserver"
    )
    redis_url = env_map(agent).get("INSTAFACE_REDIS", {}).get("value", "")
    connection = (
        env_map(graphserver).get("ConnectionStrings__DefaultConnection", {}).get("value", "")
    )
    f.check(redis_url.startswith("redis://"), "the agent has no INSTAFACE_REDIS URL")
    f.check(
        connection.startswith("server="),
        "the graphserver has no ConnectionStrings__DefaultConnection",
    )

    f.check(
        ("redis" in components) == values["redis"]["enabled"],
        "a Redis workload is rendered iff redis.enabled",
    )
    f.check(
        ("mysql" in components) == values["mysql"]["enabled"],
        "a MariaDB workload is rendered iff mysql.enabled",
    )
    if not values["redis"]["enabled"]:
        host = values["redis"]["external"]["url"].split("://", 1)[1]
        f.check(
            redis_url.endswith("@" + host) or redis_url == "redis://" + host,
            "the agent's Redis URL is not redis.external.url",
        )
    if not values["mysql"]["enabled"]:
        ext = values["mysql"]["external"]
        f.check(
            f"server={ext['host']};port={ext['port']};" in connection,
            "the connection string is not mysql.external",
        )
    f.check(
        f"database={values['mysql']['auth']['database']};" in connection,
        "the connection string has the wrong database",
    )

    # Every Service selects some rendered pods and targets ports they declare.
    for service in (d for d in docs if d["kind"] == "Service"):
        selected = [
            w
            for w in workloads
            if labels_match(service["spec"].get("selector"), template(w)["metadata"]["labels"])
        ]
        if f.check(selected, f"Service {service['metadata']['name']} selects no pods"):
            declared = {
                p.get("name")
                for w in selected
                for c in template(w)["spec"]["containers"]
                for p in c.get("ports") or []
            }
            for port in service["spec"]["ports"]:
                target = port.get("targetPort")
                f.check(
                    not isinstance(target, str) or target in declared,
                    f"Service {service['metadata']['name']} targets undeclared port {target}",
                )

    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if values["metrics"]["serviceMonitor"]["enabled"]:
        if f.check(len(monitors) == 1, "no ServiceMonitor although enabled"):
            monitor = monitors[0]
            f.check(
                monitor["apiVersion"] == "monitoring.coreos.com/v1",
                "the ServiceMonitor is not monitoring.coreos.com/v1",
            )
            for key, value in values["metrics"]["serviceMonitor"]["labels"].items():
                f.check(
                    monitor["metadata"]["labels"].get(key) == value,
                    f"the ServiceMonitor lacks label {key}",
                )
            targets = [
                s
                for s in docs
                if s["kind"] == "Service"
                and labels_match(
                    monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels") or {}
                )
            ]
            f.check(
                len(targets) == 1, f"the ServiceMonitor selects {len(targets)} Services, not one"
            )
            if targets:
                ports = {p["name"] for p in targets[0]["spec"]["ports"]}
                for endpoint in monitor["spec"]["endpoints"]:
                    f.check(
                        endpoint["port"] in ports,
                        f"ServiceMonitor endpoint port {endpoint['port']} is not on the Service",
                    )
                f.check(
                    len(monitor["spec"]["endpoints"]) >= 2,
                    "the ServiceMonitor does not scrape both containers",
                )
    else:
        f.check(not monitors, "a ServiceMonitor is rendered while disabled")

    annotations = dig(sts, ["spec", "template", "metadata", "annotations"]) or {}
    f.check(
        (annotations.get("prometheus.io/scrape") == "true") == values["metrics"]["annotations"],
        "prometheus.io/scrape on the pods does not follow metrics.annotations",
    )
    if values["metrics"]["annotations"]:
        f.check(
            annotations.get("prometheus.io/port") == str(values["agent"]["metricsPort"]),
            "prometheus.io/port is not the agent's metrics port",
        )
    # `helm test`: the bot against the API Service.
    tests = [
        d
        for d in docs
        if d["kind"] == "Pod" and d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    if values["smokeTest"]["enabled"]:
        api = [
            d
            for d in docs
            if d["kind"] == "Service"
            and d["spec"].get("clusterIP") != "None"
            and labels_match(
                d["spec"].get("selector"), sts["spec"]["template"]["metadata"]["labels"]
            )
        ]
        if f.check(len(tests) == 1 and api, "no helm test Pod, or no API Service for it"):
            args = flag_values(tests[0]["spec"]["containers"][0].get("args"))
            service, port = api[0]["metadata"]["name"], api[0]["spec"]["ports"][0]["port"]
            expected = f"http://{service}.{NAMESPACE}.svc:{port}"
            f.check(
                args.get("targets") == expected,
                f"the helm test targets {args.get('targets')}, not {expected}",
            )
            f.check(tests[0]["spec"].get("restartPolicy") == "Never", "the helm test Pod restarts")
    else:
        f.check(not tests, "a helm test Pod is rendered while smokeTest is disabled")

    if values["serviceAccount"]["create"]:
        account = sts["spec"]["template"]["spec"].get("serviceAccountName")
        f.check(("ServiceAccount", account) in names, "the pods' ServiceAccount is not rendered")


def check_network_policies(docs, values, sts, f):
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    if not values["networkPolicy"]["enabled"]:
        f.check(not policies, "NetworkPolicies are rendered while disabled")
        return
    members = sts["spec"]["template"]["metadata"]["labels"]
    workloads = pod_workloads(docs)
    guarded = set()
    for policy in policies:
        name = policy["metadata"]["name"]
        selected = [
            w
            for w in workloads
            if labels_match(
                policy["spec"]["podSelector"]["matchLabels"], template(w)["metadata"]["labels"]
            )
        ]
        if not f.check(
            len(selected) == 1, f"NetworkPolicy {name} selects {len(selected)} workloads, not one"
        ):
            continue
        workload = selected[0]
        guarded.add(workload["metadata"]["name"])
        declared = {
            p.get("name")
            for c in template(workload)["spec"]["containers"]
            for p in c.get("ports") or []
        }
        for rule in policy["spec"].get("ingress") or []:
            ports = [p["port"] for p in rule.get("ports") or []]
            for port in ports:
                f.check(
                    port in declared,
                    f"NetworkPolicy {name} opens port {port}, which the pods do not declare",
                )
            # The election port, Redis and MySQL take connections from the release's own pods only.
            if workload is not sts or "peer" in ports:
                sources = rule.get("from") or []
                f.check(
                    sources
                    and all(
                        labels_match(dig(src, ["podSelector", "matchLabels"]), members)
                        and "namespaceSelector" not in src
                        for src in sources
                    ),
                    f"NetworkPolicy {name} lets pods other than the members reach {ports}",
                )
        if workload is sts:
            allowed = {
                p["port"]
                for rule in policy["spec"].get("ingress") or []
                for p in rule.get("ports") or []
                if any(
                    labels_match(dig(src, ["podSelector", "matchLabels"]), members)
                    for src in rule.get("from") or []
                )
            }
            f.check(
                {"peer", "http"} <= allowed, "members cannot reach each other's peer and http ports"
            )
    for workload in workloads:
        if not is_hook(workload):
            f.check(
                workload["metadata"]["name"] in guarded,
                f"{workload['metadata']['name']} has no NetworkPolicy",
            )


def render(args):
    chart_values = yaml.safe_load(open(os.path.join(args.chart, "values.yaml")))
    helm_args = ["template", RELEASE, args.chart, "--namespace", NAMESPACE]
    overrides = {}
    if args.values:
        helm_args += ["--values", args.values]
        overrides = yaml.safe_load(open(args.values)) or {}
    values = deep_merge(chart_values, overrides)
    result = run_helm(args.helm, helm_args)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    f = Failures()
    for doc in docs:
        f.check(
            doc.get("apiVersion") and doc.get("kind") and dig(doc, ["metadata", "name"]),
            f"a rendered object lacks apiVersion, kind or name: {str(doc)[:80]}",
        )
    sts = check_election_pods(docs, values, f)
    check_containers(docs, f)
    check_secrets(docs, values, f)
    if sts is not None:
        check_dependencies(docs, values, sts, f)
        check_network_policies(docs, values, sts, f)
    label = os.path.basename(args.values) if args.values else "default values"
    for item in f.items:
        print(f"FAIL ({label}): {item}")
    if not f.items:
        print(f"ok: {len(docs)} objects rendered from {label}, all checks pass")
    return 1 if f.items else 0


def lint(args):
    status = 0
    for values in [None] + args.values_files:
        helm_args = ["lint", "--strict", args.chart] + (["--values", values] if values else [])
        result = run_helm(args.helm, helm_args)
        label = os.path.basename(values) if values else "default values"
        if result.returncode != 0:
            print(f"FAIL: helm lint --strict with {label}\n{result.stdout}{result.stderr}")
            status = 1
        else:
            print(f"ok: helm lint --strict with {label}")
    return status


def reject(args):
    helm_args = ["template", RELEASE, args.chart]
    for item in args.set or []:
        helm_args += ["--set", item]
    for values in args.values or []:
        helm_args += ["--values", values]
    result = run_helm(args.helm, helm_args)
    if result.returncode == 0:
        print(f"FAIL: helm template accepted {args.set or args.values}")
        return 1
    if args.expect not in result.stderr:
        print(f"FAIL: rejected, but not with '{args.expect}':\n{result.stderr}")
        return 1
    print(f"ok: {args.set or args.values} rejected: {args.expect}")
    return 0


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    p_lint = sub.add_parser("lint")
    p_lint.add_argument("values_files", nargs="*")
    p_render = sub.add_parser("render")
    p_render.add_argument("--values")
    p_reject = sub.add_parser("reject")
    p_reject.add_argument("--set", action="append")
    p_reject.add_argument("--values", action="append")
    p_reject.add_argument("--expect", required=True)
    args = parser.parse_args()
    return {"lint": lint, "render": render, "reject": reject}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
