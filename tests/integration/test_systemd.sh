#!/usr/bin/env bash
# test_systemd.sh: the units of deploy/systemd/. `systemd-analyze verify`
# (with ExecStart pointed at this build's programs, as an install to
# /usr/local/bin would have them) must pass for the coordinator and a
# worker instance, and for mlops-serve where the build has it. Then, as
# data: each unit is sandboxed (DynamicUser=yes, ProtectSystem=strict,
# NoNewPrivileges, StateDirectory= for the daemons with state, the data
# directory inside it), stops with SIGTERM, every flag of its ExecStart
# is in its program's --help, and every key file it loads is one that
# `mlopsctl keygen --cluster` makes. Without systemd-analyze only the
# data checks run (and it says so).
source "$(dirname "$0")/lib.sh"
U="$MLOPS_SOURCE_DIR/deploy/systemd"

ctl keygen --cluster --out "$T/keys" >/dev/null || fail "keygen --cluster"
(cd "$T/keys" && find . -type f | sed 's|^\./||' | sort) >"$T/keyfiles"
for p in mlops-coordinator mlops-worker mlops-serve; do
    [ -x "$MLOPS_BUILD_DIR/$p" ] && "$MLOPS_BUILD_DIR/$p" --help >"$T/help.$p" 2>&1
done

if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$T/units"
    for f in "$U"/*.service; do
        sed "s|/usr/local/bin/|$MLOPS_BUILD_DIR/|" "$f" >"$T/units/$(basename "$f")"
    done
    cp "$T/units/mlops-worker@.service" "$T/units/mlops-worker@1.service"
    units=(mlops-coordinator.service mlops-worker@1.service)
    if [ -x "$MLOPS_BUILD_DIR/mlops-serve" ]; then
        units+=(mlops-serve.service)
    else
        echo "test_systemd: mlops-serve is not built: mlops-serve.service is checked as data only"
    fi
    out="$(cd "$T/units" && systemd-analyze verify "${units[@]/#/./}" 2>&1)" ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warned: $out"
else
    echo "test_systemd: no systemd-analyze: the units are checked as data only"
fi

"$PY" - "$U" "$T" <<'EOF' || fail "deploy/systemd checks failed (above)"
import glob, os, re, sys
u, t = sys.argv[1], sys.argv[2]
keyfiles = set(open(os.path.join(t, "keyfiles")).read().split())
bad = []
def check(ok, what):
    if not ok:
        bad.append(what)
units = sorted(glob.glob(os.path.join(u, "*.service")))
check(len(units) == 3, "three units (coordinator, worker@, serve): %s" % units)
for path in units:
    name = os.path.basename(path)
    text = re.sub(r"\\\n\s*", " ", open(path).read())  # join continued lines
    kv = [tuple(l.split("=", 1)) for l in text.splitlines() if "=" in l and not l.lstrip().startswith("#")]
    get = lambda k: [v.strip() for kk, v in kv if kk.strip() == k]
    check(get("DynamicUser") == ["yes"] or get("User"), "%s: DynamicUser=yes or a User" % name)
    check(get("ProtectSystem") == ["strict"], "%s: ProtectSystem=strict" % name)
    check(get("NoNewPrivileges") == ["yes"], "%s: NoNewPrivileges=yes" % name)
    check(get("KillSignal") == ["SIGTERM"], "%s: stops with SIGTERM (the drain)" % name)
    exe = get("ExecStart")
    check(len(exe) == 1, "%s: one ExecStart" % name)
    argv = exe[0].split() if exe else []
    prog = os.path.basename(argv[0]) if argv else "?"
    help_file = os.path.join(t, "help." + prog)
    flags = [a for a in argv if a.startswith("--")]
    if os.path.exists(help_file):
        h = open(help_file).read()
        for f in flags:
            check(re.search(r"(^|[\s,])" + re.escape(f) + r"\b", h) is not None,
                  "%s: %s is not in `%s --help`" % (name, f, prog))
    else:
        check(prog == "mlops-serve" and set(flags) <= {"--coordinator", "--model", "--listen"},
              "%s: %s not built, flags %s" % (name, prog, flags))
    if "--data-dir" in argv:
        sd = get("StateDirectory")
        check(len(sd) == 1, "%s: a StateDirectory for --data-dir" % name)
        if sd:
            check(argv[argv.index("--data-dir") + 1] == "/var/lib/" + sd[0],
                  "%s: --data-dir is the StateDirectory /var/lib/%s" % (name, sd[0]))
    creds = {}
    for c in get("LoadCredential"):
        cid, src = c.split(":", 1)
        creds[cid] = src
        check(src.startswith("/etc/mlops/keys/") and src[len("/etc/mlops/keys/"):] in keyfiles,
              "%s: credential %s from %s, not a keygen --cluster file" % (name, cid, src))
    for i, a in enumerate(argv[:-1]):
        v = argv[i + 1]
        if a in ("--cert", "--http-token-file", "--server-key"):
            if v.startswith("%d/"):
                check(v[3:] in creds, "%s: %s %s is not a LoadCredential" % (name, a, v))
                if a == "--cert":
                    check(v[3:] + "_secret" in creds, "%s: the secret half of %s" % (name, v))
            else:
                check(v.startswith("/etc/mlops/keys/") and v[16:] in keyfiles and not v.endswith("_secret"),
                      "%s: %s %s: a public key file of keygen --cluster" % (name, a, v))
        if a in ("--worker-keys", "--client-keys"):
            check(v.startswith("/etc/mlops/keys/") and any(k.startswith(v[16:] + "/") for k in keyfiles),
                  "%s: %s %s is a directory of keygen --cluster" % (name, a, v))
if bad:
    print("deploy/systemd: %d problem(s):\n  %s" % (len(bad), "\n  ".join(bad)), file=sys.stderr)
    sys.exit(1)
EOF
echo "test_systemd: ok"
