#!/usr/bin/env bash
# test_k8s.sh: deploy/k8s/ as structured data (no cluster runs here, and
# docs/deploy.md says so). /usr/bin/python3 with python3-yaml reads the
# kustomization and every manifest it lists, and checks: the Secret is
# generated from exactly the files `mlopsctl keygen --cluster` writes;
# every key path a container names (--cert, --server-key, --worker-keys,
# --client-keys, --http-token-file, MLOPS_KEY...) is a file of a volume
# from that Secret; the coordinator keeps its journal on a
# PersistentVolumeClaim; each worker pod has its own store volume (a
# volumeClaimTemplate at /data, never a shared volume); every flag a
# container passes is one its program lists in --help (mlops-serve's
# where the build has it); exec probes run `mlopsctl ... ping` and serve's
# readiness is GET /health; images, container ports and the user agree
# with docker-compose.yml and the image; every container has resource
# requests and limits.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import yaml' 2>/dev/null || { echo "skipped: no python3-yaml"; exit 77; }

ctl keygen --cluster --out "$T/keys" >/dev/null || fail "keygen --cluster"
(cd "$T/keys" && find . -type f | sed 's|^\./||' | sort) >"$T/keyfiles"
for p in mlops-coordinator mlops-worker mlopsctl mlops-serve; do
    [ -x "$MLOPS_BUILD_DIR/$p" ] && "$MLOPS_BUILD_DIR/$p" --help >"$T/help.$p" 2>&1
done
"$PY" - "$MLOPS_SOURCE_DIR" "$T" <<'EOF' || fail "deploy/k8s checks failed (above)"
import os, re, sys, yaml
src, t = sys.argv[1], sys.argv[2]
k8s = os.path.join(src, "deploy", "k8s")
bad = []
def check(ok, what):
    if not ok:
        bad.append(what)

kust = yaml.safe_load(open(os.path.join(k8s, "kustomization.yaml")))
docs = []
for r in kust["resources"]:
    path = os.path.join(k8s, r)
    check(os.path.isfile(path), "kustomization resource %s missing" % r)
    if os.path.isfile(path):
        docs += [d for d in yaml.safe_load_all(open(path)) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}

# the Secret: the files keygen --cluster makes, flat (a Secret key has no '/')
keyfiles = open(os.path.join(t, "keyfiles")).read().split()
gen = [g for g in kust.get("secretGenerator", []) if g["name"] == "mlops-keys"]
check(len(gen) == 1, "one secretGenerator mlops-keys")
secret_keys = sorted(os.path.basename(f) for f in gen[0]["files"]) if gen else []
flat = sorted(f for f in keyfiles if "/" not in f)
check(secret_keys == flat, "Secret files %s != keygen --cluster's %s" % (secret_keys, flat))

# docker-compose.yml, the reference for images and ports
compose = yaml.safe_load(open(os.path.join(src, "docker-compose.yml")))
def dflt(v):  # "${VAR:-x}" -> x
    m = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", str(v))
    return m.group(1) if m else str(v)
def cports(cmd):  # the container ports a command listens on
    ports = set()
    for i, a in enumerate(cmd[:-1]):
        if a in ("--bind", "--metrics-listen", "--http", "--listen"):
            ports.add(int(re.split(r"[:/]", cmd[i + 1])[-1]))
    return ports
svc_of = {"coordinator": "coordinator", "worker": "worker", "serve": "serve"}
compose_img = {s: dflt(c.get("image", "")) for s, c in compose["services"].items()}

def flags_ok(prog, cmd, where):
    h = os.path.join(t, "help." + prog)
    if not os.path.exists(h):
        if prog == "mlops-serve":  # not built here: the flags the issue names
            known = {"--coordinator", "--model", "--listen"}
            for a in cmd:
                if a.startswith("--"):
                    check(a in known, "%s: %s is not a flag of mlops-serve" % (where, a))
            return
        check(False, "%s: %s is not built" % (where, prog))
        return
    text = open(h).read()
    for a in cmd:
        if a.startswith("--"):
            check(re.search(r"(^|[\s,])" + re.escape(a) + r"\b", text) is not None,
                  "%s: %s is not in `%s --help`" % (where, a, prog))

def key_files(pod):  # mount path -> {file paths} of the pod's Secret volumes
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    out = {}
    for c in pod["containers"]:
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"])
            if v and "secret" in v:
                check(v["secret"]["secretName"] == "mlops-keys", "%s: keys from the Secret mlops-keys" % m["name"])
                for it in v["secret"].get("items", []):
                    check(it["key"] in secret_keys, "%s: Secret has no %s" % (m["name"], it["key"]))
                    out.setdefault(m["mountPath"], set()).add(it["path"])
    return out

workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
comp_of = {}
for w in workloads:
    name = w["metadata"]["name"]
    comp = w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
    comp_of[comp] = w
    pod = w["spec"]["template"]["spec"]
    sc = pod.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001,
          "%s: runs as the image's user 10001, non-root" % name)
    kf = key_files(pod)
    files = {os.path.join(mp, p) for mp, ps in kf.items() for p in ps}
    dirs = {os.path.dirname(f) for f in files}
    for c in pod["containers"]:
        cmd = c["command"]
        where = "%s/%s" % (name, c["name"])
        flags_ok(cmd[0], cmd, where)
        # key paths given as flags or env are files (or dirs) of the Secret volume
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for i, a in enumerate(cmd[:-1]):
            if a in ("--cert", "--server-key", "--http-token-file"):
                check(cmd[i + 1] in files, "%s: %s %s is not from the Secret" % (where, a, cmd[i + 1]))
                if a == "--cert":
                    check(cmd[i + 1] + "_secret" in files, "%s: no secret half of %s" % (where, cmd[i + 1]))
            if a in ("--worker-keys", "--client-keys"):
                check(cmd[i + 1] in dirs, "%s: %s %s is not a Secret directory" % (where, a, cmd[i + 1]))
        for e in ("MLOPS_KEY", "MLOPS_SERVER_KEY"):
            if e in env:
                check(env[e] in files, "%s: %s=%s is not from the Secret" % (where, e, env[e]))
        # resources
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            check(all(r in res.get(kind, {}) for r in ("cpu", "memory")), "%s: %s cpu and memory" % (where, kind))
        # probes point at real things
        for pn in ("readinessProbe", "livenessProbe"):
            p = c.get(pn)
            if not p:
                continue
            if "exec" in p:
                pc = p["exec"]["command"]
                check(pc[0] == "mlopsctl" and "ping" in pc, "%s: %s runs mlopsctl ping" % (where, pn))
                flags_ok("mlopsctl", pc, where + " " + pn)
                check(re.search(r"^\s+ping\s", open(os.path.join(t, "help.mlopsctl")).read(), re.M) is not None,
                      "mlopsctl has a ping command")
                check("MLOPS_KEY" in env and "MLOPS_COORDINATOR" in env, "%s: %s has a key and an endpoint" % (where, pn))
            if "httpGet" in p:
                check(p["httpGet"]["path"] == "/health", "%s: %s GET /health" % (where, pn))
        check("readinessProbe" in c, "%s: a readiness probe" % where)
        # images and ports agree with compose
        svc = compose["services"].get(svc_of.get(comp, ""), {})
        check(c["image"] == compose_img.get(svc_of.get(comp, ""), "?"),
              "%s: image %s != compose's %s" % (where, c["image"], compose_img.get(comp)))
        kports = {p["containerPort"] for p in c.get("ports", [])}
        check(kports == cports(cmd), "%s: containerPorts %s != the ports it listens on %s" % (where, kports, cports(cmd)))
        check(cports(cmd) == cports([str(a) for a in svc.get("command", [])]),
              "%s: ports %s != compose's %s" % (where, cports(cmd), cports(svc.get("command", []))))

# the coordinator: one replica, its journal on a claim; a Service on its ports
co = comp_of.get("coordinator")
check(co is not None and co["kind"] == "StatefulSet" and co["spec"]["replicas"] == 1, "coordinator StatefulSet of 1")
if co:
    vct = {v["metadata"]["name"] for v in co["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["name"]: m["mountPath"] for m in co["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    check(any(mounts.get(v) == "/data" for v in vct), "coordinator: /data (--data-dir) on a PersistentVolumeClaim")
svc = by.get(("Service", "mlops-coordinator"))
check(svc is not None and 5555 in {p["port"] for p in svc["spec"]["ports"]}, "Service mlops-coordinator on 5555")
# workers point at that Service
wk = comp_of.get("worker")
check(wk is not None and wk["kind"] == "StatefulSet", "workers as a StatefulSet")
if wk:
    cmd = wk["spec"]["template"]["spec"]["containers"][0]["command"]
    check(cmd[cmd.index("--coordinator") + 1] == "tcp://mlops-coordinator:5555", "workers connect to the Service")
    pod = wk["spec"]["template"]["spec"]
    vct = {v["metadata"]["name"]: v for v in wk["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    data = mounts.get(cmd[cmd.index("--data-dir") + 1])
    check(data in vct, "each worker's store (--data-dir) is its own volumeClaimTemplate, not %s" % data)
    check(data not in {v["name"] for v in pod.get("volumes", [])}, "no shared pod volume for the store")
    if data in vct:
        check(vct[data]["spec"]["accessModes"] == ["ReadWriteOnce"], "worker store ReadWriteOnce")
    check("--advertise-ip" in cmd, "workers advertise their pod IP")
se = comp_of.get("serve")
check(se is not None and se["kind"] == "Deployment", "mlops-serve as a Deployment")
ss = by.get(("Service", "mlops-serve"))
check(ss is not None and ss["spec"]["selector"] == (se or {}).get("spec", {}).get("selector", {}).get("matchLabels"),
      "a Service selects mlops-serve's pods")
if bad:
    print("deploy/k8s: %d problem(s):\n  %s" % (len(bad), "\n  ".join(bad)), file=sys.stderr)
    sys.exit(1)
print("deploy/k8s: %d objects checked" % len(docs))
EOF
echo "test_k8s: ok"
