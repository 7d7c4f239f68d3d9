#!/usr/bin/python3
"""compose_test.py - the compose files and the image, tested without a Docker engine

  compose_test.py image SRC BUILD
      Every library that build/bin/* and libjr.so load (ldd) must come from a
      Debian package the runtime stage of deploy/Dockerfile installs: named
      on its apt-get line, a dependency of one named there, or in the base
      image (Essential, Priority required, apt). Nothing may be "not found".

  compose_test.py topology SRC BUILD
      `docker-compose config` validates every docker-compose*.yml. Then the
      resolved docker-compose.yml runs as Docker would run it, one network
      namespace per service and replica (keys once, broker, ingester, worker
      x3, as `--scale worker=3`), on one bridge, with /etc/hosts naming every
      service, each service's command, environment, user and volumes (temp
      folders bind-mounted at the container paths in a private mount
      namespace; a private /tmp; the binaries bind-mounted at
      /usr/local/bin as in the image), in depends_on order, each healthcheck
      run in its service's namespaces until it passes. One more worker runs
      from docker-compose.workers.yml, as on another host: its key folder
      copied out of the worker key volume as README.md says. 300 mixed jobs
      go in from a client namespace (the `jr` service) with `jr submit
      --file`; every accepted id must be stored exactly once in the
      ingester's SQLite database, and every worker replica must have run
      some.

Needs root (namespaces, mounts; exit 77 = skipped without), ip, unshare,
nsenter, setpriv (util-linux), docker-compose, sqlite3, python3-yaml.
Everything it makes is removed on the way out, failed or not.
"""
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

PREFIX = "jrk"  # names of namespaces, links, /etc/netns folders
NET = "10.79.0"  # the compose network: bridge .1, replicas from .10
BRIDGE = PREFIX + "-br"
STATE = "/run/jr-compose-test.state"  # what a run made outside its temp folder, for the next
SCALE = {"worker": 3}  # as `docker compose up --scale worker=3`
JOBS = 300


class Fail(Exception):
    pass


class Exited(Fail):
    pass


def log(msg):
    print("compose: " + msg, flush=True)


def run(cmd, check=True, timeout=60, **kw):
    """Run cmd (a list), return the CompletedProcess; Fail if check and it fails."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise Fail("%s: no exit in %d s" % (" ".join(cmd), timeout))
    if check and p.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(cmd), p.returncode, (p.stderr or p.stdout).strip()))
    return p


def wait_for(what, cond, bound_s, step_s=0.2):
    """Poll cond() until true; Fail naming what after bound_s (a generous bound, not a speed)."""
    end = time.monotonic() + bound_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Fail("%s: not within %d s" % (what, bound_s))
        time.sleep(step_s)


def seconds(text):
    """A compose duration ("30s", "1m30s", "500ms") in seconds."""
    total, n = 0.0, 0
    for num, unit in re.findall(r"([0-9.]+)(ms|us|s|m|h)", str(text)):
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
        n += 1
    if not n:
        raise Fail("cannot read the duration %r" % text)
    return total


# ---------------------------------------------------------------- Dockerfile

def dockerfile_runtime(src):
    """The runtime (last) stage of deploy/Dockerfile: apt packages, user,
    workdir, the folders it chowns to the user, and the whole stage text."""
    text = open(os.path.join(src, "deploy", "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)  # continued lines become one
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    starts = [i for i, ln in enumerate(lines) if re.match(r"\s*FROM\s", ln, re.I)]
    if len(starts) < 2:
        raise Fail("deploy/Dockerfile: expected a build stage and a runtime stage")
    build = lines[starts[-2]:starts[-1]]
    stage = lines[starts[-1]:]
    info = {"packages": [], "user": "root", "workdir": "/", "owned": [], "text": "\n".join(stage),
            "build": "\n".join(build), "build_lines": build, "lines": stage}
    for ln in stage:
        m = re.match(r"\s*(\w+)\s+(.*)", ln)
        if not m:
            continue
        op, arg = m.group(1).upper(), m.group(2).strip()
        if op == "USER":
            info["user"] = arg
        elif op == "WORKDIR":
            info["workdir"] = arg
        elif op == "RUN":
            for seg in re.split(r"&&|;", arg):
                words = seg.split()
                if "apt-get" in words and "install" in words:
                    rest = words[words.index("install") + 1:]
                    info["packages"] += [w for w in rest if not w.startswith("-")]
                m2 = re.match(r"\s*chown\s+(?:-R\s+)?(\S+)\s+(.*)", seg)
                if m2:
                    info["owned"] += m2.group(2).split()
    if not info["packages"]:
        raise Fail("deploy/Dockerfile: no apt-get install in the runtime stage")
    return info


def stage_image(src, build, root):
    """Replay the Dockerfile's file steps on this build: the build stage's
    commands that fill /out (the copies and strips, not the compile: build/
    is the tree built here), the runtime stage's COPYs into root, and its RUN
    steps on /usr/local (the chmod, the ls and the ldd check; not apt-get,
    useradd or ldconfig, whose part LD_LIBRARY_PATH plays). Returns the
    environment for running the staged binaries."""
    info = dockerfile_runtime(src)
    out = os.path.join(root, "out")
    word = lambda path, to: (lambda t: re.sub(r"(?<![\w/.-])%s(?=/|\s|$)" % re.escape(path), to, t))
    to_out = word("/out", out)
    to_build = word("build", build)
    to_root = word("/usr/local", os.path.join(root, "usr", "local"))
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(root, "usr", "local", "lib"))
    done = []
    for ln in info["build_lines"]:
        m = re.match(r"\s*RUN\s+(.*)", ln, re.I)
        if not m or "/out" not in m.group(1):
            continue
        steps = [x.strip() for x in m.group(1).split("&&") if "/out" in x]
        cmd = " && ".join(to_build(to_out(x)) for x in steps)
        r = run(["sh", "-ec", cmd], check=False, cwd=src)
        if r.returncode != 0:
            raise Fail("the build stage's steps failed here: %s\n%s" % (cmd, r.stderr.strip()))
        done += steps
    if not done:
        raise Fail("deploy/Dockerfile: the build stage puts nothing in /out")
    for ln in info["lines"]:
        m = re.match(r"\s*(COPY|RUN)\s+(.*)", ln, re.I)
        if not m:
            continue
        if m.group(1).upper() == "COPY":
            words = m.group(2).split()
            frm = [w for w in words if w.startswith("--from=")]
            a, b = [w for w in words if not w.startswith("--")][-2:]
            a = to_out(a) if frm else os.path.join(src, a)
            b = os.path.join(root, b.lstrip("/"))
            if os.path.isdir(a):
                os.makedirs(b, exist_ok=True)
                run(["cp", "-a", a.rstrip("/") + "/.", b])
            else:
                os.makedirs(os.path.dirname(b), exist_ok=True)
                run(["cp", "-a", a, b])
        else:
            steps = [x.strip() for x in m.group(2).split("&&") if "/usr/local" in x]
            if steps:
                cmd = " && ".join(to_root(x) for x in steps)
                r = run(["sh", "-ec", cmd], check=False, env=env)
                if r.returncode != 0:
                    raise Fail("the runtime stage's check failed here: %s\n%s"
                               % (cmd, (r.stdout + r.stderr).strip()))
    for root_, dirs, files in os.walk(root):
        os.chmod(root_, 0o755)
    staged = sorted(os.listdir(os.path.join(root, "usr", "local", "bin")))
    log("image staged as the Dockerfile does: /usr/local/bin: %s; /usr/local/lib: %s"
        % (" ".join(staged), " ".join(sorted(os.listdir(os.path.join(root, "usr", "local", "lib"))))))
    return env


def dpkg_database():
    """Every package dpkg knows here: name -> (installed, priority, essential, deps)."""
    fmt = "${Package}\t${Status}\t${Priority}\t${Essential}\t${Depends}, ${Pre-Depends}\t${Provides}\n"
    out = run(["dpkg-query", "-W", "-f=" + fmt]).stdout
    db, provides = {}, {}
    for ln in out.splitlines():
        f = ln.split("\t")
        if len(f) < 6:
            continue
        deps = []
        for alt in f[4].split(","):
            for d in alt.split("|"):
                d = re.sub(r"\(.*?\)", "", d).strip().split(":")[0]
                if d:
                    deps.append(d)
        installed = f[1].endswith(" installed")
        db[f[0]] = (installed, f[2], f[3] == "yes", deps)
        if installed:
            for p in f[5].split(","):
                p = re.sub(r"\(.*?\)", "", p).strip()
                if p:
                    provides.setdefault(p, []).append(f[0])
    return db, provides


def closure(roots, db, provides):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        for q in [p] + provides.get(p, []):
            if q in seen or q not in db or not db[q][0]:
                continue
            seen.add(q)
            todo += db[q][3]
    return seen


def dpkg_owner(path):
    """The package shipping path (merged /usr: try both spellings and the real file)."""
    cands = []
    for p in (path, os.path.realpath(path)):
        cands += [p, p[4:] if p.startswith("/usr/") else "/usr" + p]
    for c in cands:
        r = run(["dpkg", "-S", c], check=False)
        if r.returncode == 0:
            return r.stdout.split(":")[0].split(",")[0].strip()
    return None


def check_image(src, build):
    info = dockerfile_runtime(src)
    log("runtime stage installs: " + " ".join(info["packages"]))
    if not re.search(r"libjr\.so", info["build"]):
        raise Fail("deploy/Dockerfile: the build stage does not copy libjr.so")
    if not re.search(r"COPY\s+--from=\S+\s+\S*lib\S*\s+/usr/local/lib", info["text"]):
        raise Fail("deploy/Dockerfile: the runtime stage does not copy the libraries to /usr/local/lib")
    if not re.search(r"ldd[^\n]*libjr\.so[^\n]*not found", info["text"]):
        raise Fail("deploy/Dockerfile: the runtime stage's ldd check does not cover libjr.so")
    root = tempfile.mkdtemp(prefix="jr-image.")
    try:
        env = stage_image(src, build, root)
        check_libs(info, root, env, build)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_libs(info, root, env, build):
    local = os.path.join(root, "usr", "local")
    bins = [os.path.join(local, "bin", b) for b in ("jr-broker", "jr-worker", "jr-ingester", "jr")]
    libs = sorted(p for p in glob.glob(os.path.join(local, "lib", "libjr.so*"))
                  if os.path.isfile(p) and not os.path.islink(p))
    if not libs:
        raise Fail("the image would have no libjr.so in /usr/local/lib")
    db, provides = dpkg_database()
    for p in info["packages"]:
        if p not in db or not db[p][0]:
            raise Fail("deploy/Dockerfile names %s, not installed here: cannot check what it brings"
                       " (is the name right for Debian 12?)" % p)
    base = [p for p, v in db.items() if v[0] and (v[2] or v[1] == "required")] + ["apt"]
    have = closure(info["packages"], db, provides) | closure(base, db, provides)
    bad, seen = [], {}
    for f in bins + libs[:1]:
        if not os.path.exists(f):
            raise Fail("the image would have no %s" % f)
        out = run(["ldd", f], env=env).stdout
        for ln in out.splitlines():
            if "not found" in ln:
                bad.append("%s: %s" % (os.path.basename(f), ln.strip()))
                continue
            m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", ln) or re.match(r"\s*(/\S+)\s+\(", ln)
            if not m:
                continue  # linux-vdso
            path = m.group(m.lastindex)
            if os.path.realpath(path).startswith(os.path.realpath(root) + "/"):
                continue  # libjr.so: the image copies it from the build stage
            if os.path.realpath(path).startswith(os.path.realpath(build) + "/"):
                bad.append("%s finds %s in the build tree (RUNPATH), which the image has not"
                           % (os.path.basename(f), path))
                continue
            if path not in seen:
                seen[path] = dpkg_owner(path)
            pkg = seen[path]
            if pkg is None:
                bad.append("%s loads %s, which no Debian package ships" % (os.path.basename(f), path))
            elif pkg not in have:
                bad.append("%s loads %s from %s: add it to the runtime stage's apt-get install"
                           % (os.path.basename(f), path, pkg))
    for path, pkg in sorted(seen.items()):
        log("  %-48s %s" % (path, pkg))
    if bad:
        raise Fail("the image would miss libraries:\n  " + "\n  ".join(bad))
    log("image: %d libraries of %d binaries and libjr.so, all from the runtime stage's packages"
        % (len(seen), len(bins)))


# ---------------------------------------------------------------- compose

def compose_config(path, env=None, drop=()):
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e.update(env or {})
    r = run(["docker-compose", "-f", path, "config"], check=False, env=e,
            cwd=os.path.dirname(path))
    return r


def check_configs(src):
    """docker-compose config on every compose file; returns {file: resolved}."""
    files = sorted(glob.glob(os.path.join(src, "docker-compose*.yml")))
    if len(files) < 2:
        raise Fail("expected docker-compose.yml and a workers-only file, found %s" % files)
    resolved = {}
    for f in files:
        text = open(f).read()
        required = sorted(set(re.findall(r"\$\{(\w+):\?", text)))
        env = {v: "10.79.0.250" for v in required}
        r = compose_config(f, env)
        if r.returncode != 0:
            raise Fail("docker-compose -f %s config: %s" % (f, r.stderr.strip()))
        resolved[os.path.basename(f)] = yaml.safe_load(r.stdout)
        for v in required:  # unset, it must fail and say what to set
            r = compose_config(f, {k: x for k, x in env.items() if k != v}, drop=(v,))
            if r.returncode == 0 or v not in r.stderr:
                raise Fail("%s: with %s unset, config should fail naming it; said: %s"
                           % (f, v, r.stderr.strip()))
        log("config ok: %s%s" % (os.path.basename(f),
                                 " (needs %s)" % ", ".join(required) if required else ""))
    return resolved


def check_static(cfg, workers_cfg):
    """What the issue asks of the files, read from the resolved config."""
    services = cfg["services"]
    for name in ("keys", "broker", "ingester", "worker"):
        if name not in services:
            raise Fail("docker-compose.yml: no service %s" % name)
    targets = lambda s: {int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1])
                         for p in services[s].get("ports", [])}
    if not {5570, 5571} <= targets("broker"):
        raise Fail("the broker must publish 5570 and 5571, publishes %s" % targets("broker"))
    if 5572 not in targets("ingester"):
        raise Fail("the ingester must publish 5572")
    for f, c in (("docker-compose.yml", cfg), ("workers file", workers_cfg)):
        for name, s in c["services"].items():
            if name == "keys" or s.get("profiles"):
                continue
            if not s.get("healthcheck", {}).get("test"):
                raise Fail("%s: service %s has no healthcheck" % (f, name))
            cmd = s.get("command") or []
            if "jr-worker" in cmd[:1]:
                if "--grace" not in cmd:
                    raise Fail("%s: %s: set the worker's --grace explicitly" % (f, name))
                grace = int(cmd[cmd.index("--grace") + 1]) / 1000
                stop = seconds(s.get("stop_grace_period", "10s"))
                if stop <= grace:
                    raise Fail("%s: %s: stop_grace_period %g s is not longer than --grace %g s"
                               % (f, name, stop, grace))


class Cluster:
    """Services as network namespaces on one bridge; everything made is undone by close()."""

    def __init__(self, src, build, image):
        self.src, self.build, self.image = src, build, image
        self.tmp = tempfile.mkdtemp(prefix="jr-compose.")
        os.chmod(self.tmp, 0o755)
        self.replicas = []  # every replica made, in order
        self.procs = []  # (replica, Popen) of long-running services
        self.host_dirs = []  # top-level folders made on this host as mount points
        self.made_user = False
        self.n = 0

    def stage_image(self):
        """The image's /usr/local/bin and /usr/local/lib, as the Dockerfile fills them."""
        root = os.path.join(self.tmp, "image")
        stage_image(self.src, self.build, root)
        self.usr_bin = os.path.join(root, "usr", "local", "bin")
        self.usr_lib = os.path.join(root, "usr", "local", "lib")

    def user(self, name):
        """uid, gid of name; makes the image's user here if missing (removed by close)."""
        if name in ("root", "0"):
            return 0, 0
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            if name != self.image["user"]:
                raise Fail("unknown user %s" % name)
            run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                 "/nonexistent", "--shell", "/usr/sbin/nologin", name])
            self.made_user = name
            self.remember()
            log("made the system user %s for the test" % name)
            pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid

    def remember(self):
        """Write down the host folders and user made, so a run killed with
        SIGKILL (ctest's timeout) is cleaned up by the next."""
        with open(STATE, "w") as f:
            f.write("tmp %s\n" % self.tmp
                    + ("user %s\n" % self.made_user if self.made_user else "")
                    + "".join("dir %s\n" % d for d in self.host_dirs))

    def network(self):
        self.cleanup_stale()
        if not os.path.isdir("/etc/netns"):
            os.mkdir("/etc/netns")
            self.host_dirs.insert(0, "/etc/netns")
        self.remember()
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "link", "set", BRIDGE, "type", "bridge", "stp_state", "0"])
        run(["ip", "addr", "add", NET + ".1/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])

    @staticmethod
    def cleanup_stale():
        """What a killed earlier run left: its namespaces (and processes in them),
        links, the folders and user it made (STATE)."""
        for ln in run(["ip", "netns", "list"]).stdout.splitlines():
            ns = ln.split()[0] if ln.split() else ""
            if ns.startswith(PREFIX + "-"):
                for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                run(["ip", "netns", "del", ns], check=False)
                shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)
        for ln in run(["ip", "-o", "link", "show"]).stdout.splitlines():
            m = re.match(r"\d+:\s+(%s-[^:@]+)" % PREFIX, ln)
            if m:
                run(["ip", "link", "del", m.group(1)], check=False)
        if os.path.exists(STATE):
            for ln in reversed(open(STATE).read().split("\n")):
                if ln.startswith("dir "):
                    try:
                        os.rmdir(ln[4:])
                    except OSError:
                        pass
                elif ln.startswith("tmp ") and ln[4:].startswith(tempfile.gettempdir() + "/jr-"):
                    shutil.rmtree(ln[4:], ignore_errors=True)
                elif ln.startswith("user "):
                    log("removing the user %s an earlier run made" % ln[5:])
                    run(["userdel", ln[5:]], check=False)
                    run(["groupdel", ln[5:]], check=False)
            os.unlink(STATE)

    def replica(self, service, index, spec, hosts_names=True):
        """A namespace with its link, address, hostname and private /tmp."""
        self.n += 1
        r = {"service": service, "index": index, "spec": spec,
             "ns": "%s-%s-%d" % (PREFIX, service, index), "ip": "%s.%d" % (NET, 9 + self.n),
             "veth": "%s-v%d" % (PREFIX, self.n), "hostname": secrets.token_hex(6),
             "names": hosts_names}
        r["dir"] = os.path.join(self.tmp, "ctr", r["ns"])
        os.makedirs(os.path.join(r["dir"], "tmp"))
        os.chmod(os.path.join(r["dir"], "tmp"), 0o1777)
        self.replicas.append(r)
        ns = r["ns"]
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", r["veth"], "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", r["veth"], "master", BRIDGE])
        run(["ip", "link", "set", r["veth"], "up"])
        run(["ip", "-n", ns, "addr", "add", r["ip"] + "/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return r

    def write_hosts(self):
        """/etc/netns/NS/hosts: `ip netns exec` mounts it over /etc/hosts. Compose's
        DNS answers a service name (the first replica here) and each container's name."""
        first = {}
        for r in self.replicas:
            if r["names"]:
                first.setdefault(r["service"], r["ip"])
        for r in self.replicas:
            lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost",
                     "%s\t%s" % (r["ip"], r["hostname"])]
            if r["names"]:
                lines += ["%s\t%s" % (ip, s) for s, ip in first.items()]
                lines += ["%s\tjobrunner_%s_%d" % (o["ip"], o["service"], o["index"])
                          for o in self.replicas if o["names"]]
            d = "/etc/netns/" + r["ns"]
            os.makedirs(d, exist_ok=True)
            with open(d + "/hosts", "w") as f:
                f.write("\n".join(lines) + "\n")

    def volume_dir(self, source, target):
        """A named volume's folder, made on first use; as Docker does, a fresh
        volume takes the owner of the image's folder at target."""
        d = os.path.join(self.tmp, "vol", source)
        if not os.path.isdir(d):
            os.makedirs(d)
            os.chmod(d, 0o755)
            if target in self.image["owned"]:
                uid, gid = self.user(self.image["user"])
                os.chown(d, uid, gid)
        return d

    def mounts(self, r):
        """[(host path, container path, read-only)] of r's volumes."""
        out = []
        for v in r["spec"].get("volumes", []):
            if isinstance(v, dict):
                source, target, ro = v.get("source"), v["target"], bool(v.get("read_only"))
            else:
                parts = v.split(":")
                source, target = parts[0], parts[1]
                ro = len(parts) > 2 and "ro" in parts[2].split(",")
            if source.startswith("/"):
                host = source
            else:
                host = self.volume_dir(source, target)
            out.append((host, target, ro))
        return out

    def script(self, r, mounts):
        """The shell that makes r's mount namespace look like the container, then execs."""
        tops = set()
        for _, target, _ in mounts:
            tops.add("/" + target.strip("/").split("/")[0])
        tops.add("/" + self.image["workdir"].strip("/").split("/")[0])
        tops.discard("/")
        q = lambda s: "'" + s.replace("'", "'\\''") + "'"
        uid, gid = self.user(self.image["user"])
        lines = ["set -e", "hostname %s" % r["hostname"],
                 "mount --bind %s /usr/local/bin" % q(self.usr_bin),
                 "mount --bind %s /usr/local/lib" % q(self.usr_lib)]
        for t in sorted(tops):
            if not os.path.lexists(t):  # a folder of the image only: a mount point here
                os.mkdir(t)
                self.host_dirs.append(t)
                self.remember()
            if t in self.host_dirs and t not in [m[1] for m in mounts]:
                # an image folder, not a volume: a private tmpfs, the image's owner
                owner = ",uid=%d,gid=%d" % (uid, gid) if t in self.image["owned"] else ""
                lines.append("mount -t tmpfs -o mode=755%s tmpfs %s" % (owner, q(t)))
        for host, target, ro in sorted(mounts, key=lambda m: m[1].count("/")):
            lines.append("mkdir -p %s && mount --bind %s %s" % (q(target), q(host), q(target)))
            if ro:
                lines.append("mount -o remount,bind,ro %s" % q(target))
        # last: the host's /tmp holds the folders mounted above
        lines.append("mount --bind %s /tmp" % q(os.path.join(r["dir"], "tmp")))
        lines.append("mkdir -p %s && cd %s" % (q(self.image["workdir"]), q(self.image["workdir"])))
        lines.append('exec "$@"')
        return "\n".join(lines)

    def creds(self, r):
        """setpriv ... env -i ...: the container's user and environment."""
        spec = r["spec"]
        uid, gid = self.user(str(spec.get("user") or self.image["user"]))
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": r["hostname"], "HOME": "/data" if uid else "/root",
               # the image runs ldconfig for /usr/local/lib; the host's cache does not know it
               "LD_LIBRARY_PATH": "/usr/local/lib"}
        e = spec.get("environment") or {}
        if isinstance(e, list):
            e = dict(x.split("=", 1) for x in e)
        env.update({k: "" if v is None else str(v) for k, v in e.items()})
        return (["setpriv", "--reuid", str(uid), "--regid", str(gid), "--init-groups",
                 "--pdeathsig", "KILL", "env", "-i"] + ["%s=%s" % kv for kv in env.items()])

    def argv(self, r, command=None):
        spec = r["spec"]
        entry = spec.get("entrypoint") or []
        if isinstance(entry, str):
            entry = ["sh", "-c", entry]
        cmd = command if command is not None else (spec.get("command") or [])
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        argv = list(entry) + list(cmd)
        if not argv:
            raise Fail("service %s has no command" % r["service"])
        # compose writes $$ for a literal $; Docker gets the single $
        return [a.replace("$$", "$") for a in argv]

    def start(self, r, command=None, stdout=None):
        mounts = self.mounts(r)
        argv = (["ip", "netns", "exec", r["ns"], "unshare", "--mount", "--uts", "--propagation",
                 "private", "sh", "-c", self.script(r, mounts), "sh"] + self.creds(r)
                + self.argv(r, command))
        logf = open(os.path.join(self.tmp, "%s.log" % r["ns"]), "a")
        p = subprocess.Popen(argv, stdout=stdout or logf, stderr=logf, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        r["log"], r["proc"] = logf.name, p
        return p

    def tail(self, r, n=15):
        try:
            return "".join(open(r["log"]).readlines()[-n:])
        except (OSError, KeyError):
            return ""

    def healthy(self, r):
        """Run r's healthcheck in its namespaces (as docker exec would) until it passes."""
        p = r["proc"]
        hc = r["spec"].get("healthcheck") or {}
        test = list(hc.get("test") or [])
        if not test or test[0] == "NONE":
            return
        if test[0] == "CMD-SHELL":
            cmd = ["/bin/sh", "-c", test[1]]
        elif test[0] == "CMD":
            cmd = test[1:]
        else:
            cmd = ["/bin/sh", "-c", " ".join(test)]
        cmd = [a.replace("$$", "$") for a in cmd]
        each = seconds(hc.get("timeout", "30s"))
        full = (["nsenter", "--target", str(p.pid), "--mount", "--net", "--uts", "--wd=/"]
                + self.creds(r) + cmd)
        last = [None]

        def ok():
            if p.poll() is not None:
                raise Exited("%s exited %d before it was healthy:\n%s"
                           % (r["ns"], p.returncode, self.tail(r)))
            res = run(full, check=False, timeout=int(each) + 5)
            last[0] = res
            return res.returncode == 0

        try:
            wait_for("%s healthcheck %s" % (r["ns"], " ".join(cmd)), ok, 60, 0.5)
        except Exited:
            raise
        except Fail as e:
            said = last[0] and (last[0].stdout + last[0].stderr).strip()
            raise Fail("%s; it said: %s\nthe service's log:\n%s" % (e, said, self.tail(r)))
        log("%s healthy (%s)" % (r["ns"], " ".join(cmd)))

    def close(self):
        for r, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except OSError:
                    pass
        for r, p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log("%s did not stop on SIGTERM in 15 s: SIGKILL" % r["ns"])
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        for r in self.replicas:
            run(["ip", "netns", "del", r["ns"]], check=False)
            run(["ip", "link", "del", r["veth"]], check=False)
            shutil.rmtree("/etc/netns/" + r["ns"], ignore_errors=True)
        run(["ip", "link", "del", BRIDGE], check=False)
        for d in reversed(self.host_dirs):
            try:
                os.rmdir(d)
            except OSError as e:
                log("could not remove %s: %s" % (d, e))
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.made_user:
            run(["userdel", self.made_user], check=False)
            run(["groupdel", self.made_user], check=False)
        if os.path.exists(STATE):
            os.unlink(STATE)


def order(services):
    """Services in depends_on order (Docker's start order)."""
    done, out = set(), []

    def visit(name, path):
        if name in done:
            return
        if name in path:
            raise Fail("depends_on cycle: %s" % " -> ".join(path + [name]))
        deps = services[name].get("depends_on") or {}
        for d in (deps if isinstance(deps, list) else deps.keys()):
            visit(d, path + [name])
        done.add(name)
        out.append(name)

    for name in sorted(services):
        visit(name, [])
    return out


def topology(src, build):
    for tool in ("ip", "unshare", "nsenter", "setpriv", "docker-compose", "sqlite3"):
        if not shutil.which(tool):
            raise Fail("%s is missing (deploy/install-deps.sh)" % tool)
    resolved = check_configs(src)
    cfg = resolved["docker-compose.yml"]
    workers_file = os.path.join(src, "docker-compose.workers.yml")
    check_static(cfg, resolved["docker-compose.workers.yml"])
    image = dockerfile_runtime(src)
    services = cfg["services"]
    up = [s for s in order(services) if not services[s].get("profiles")]
    tools = [s for s in services if services[s].get("profiles")]
    if "jr" not in tools:
        raise Fail("docker-compose.yml: no `jr` tools service for clients")
    c = Cluster(src, build, image)
    try:
        c.stage_image()
        c.network()
        reps = {}
        for s in up:
            reps[s] = [c.replica(s, i + 1, services[s]) for i in range(SCALE.get(s, 1))]
        client = c.replica("jr", 1, services["jr"])
        remote = c.replica("remote", 1, None, hosts_names=False)  # filled below
        c.write_hosts()
        state = {}  # service -> "completed" | "healthy" | "started"
        oneshots = {d for x in services.values() for d, cond in
                    ((x.get("depends_on") or {}) if isinstance(x.get("depends_on"), dict) else {}).items()
                    if (cond or {}).get("condition") == "service_completed_successfully"}
        for s in up:
            deps = services[s].get("depends_on") or {}
            for d, cond in (deps.items() if isinstance(deps, dict) else [(x, {}) for x in deps]):
                want = (cond or {}).get("condition", "service_started")
                have = state.get(d)
                need = {"service_completed_successfully": ("completed",),
                        "service_healthy": ("healthy",),
                        "service_started": ("started", "healthy", "completed")}[want]
                if have not in need:
                    raise Fail("%s needs %s %s, which is %s" % (s, d, want, have))
            if s in oneshots:
                for r in reps[s]:  # a one-shot: it must end, and well
                    p = c.start(r)
                    try:
                        rc = p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        raise Fail("%s did not exit in 60 s" % r["ns"])
                    if rc != 0:
                        raise Fail("%s exited %d:\n%s" % (r["ns"], rc, c.tail(r)))
                    log("%s exited 0:\n%s" % (r["ns"], c.tail(r, 3).rstrip()))
                state[s] = "completed"
                continue
            for r in reps[s]:
                c.procs.append((r, c.start(r)))
            state[s] = "started"
            for r in reps[s]:
                c.healthy(r)
            state[s] = "healthy" if services[s].get("healthcheck") else "started"

        # Published ports answer at the service's address, from another namespace.
        for s in up:
            for port in services[s].get("ports") or []:
                t = port["target"] if isinstance(port, dict) else str(port).split(":")[-1]
                wait_for("port %s of %s from %s" % (t, s, client["ns"]), lambda: run(
                    ["ip", "netns", "exec", client["ns"], "timeout", "2", "bash", "-c",
                     "exec 3<>/dev/tcp/%s/%s" % (s, t)], check=False).returncode == 0, 30, 0.5)
        log("published ports answer from the client's namespace")

        # A worker host: the worker key folder copied out of the broker host's
        # volume as README.md says, owned by the image's user, and the
        # workers-only file pointing at the broker's and ingester's addresses.
        #   docker run --rm -v jr-keys-worker:/keys/worker:ro jobrunner:latest \
        #     tar -C /keys -c worker | tar -x --no-same-owner -C /etc/jobrunner/keys
        #   chown -R 999:999 /etc/jobrunner/keys/worker  (here: this host's jobrunner)
        keydir = os.path.join(c.tmp, "remote-host", "etc", "jobrunner", "keys")
        os.makedirs(keydir)
        copier = c.replica("copy", 1, {"volumes": ["jr-keys-worker:/keys/worker:ro"]}, False)
        tarball = os.path.join(c.tmp, "worker-keys.tar")
        with open(tarball, "wb") as out:
            p = c.start(copier, command=["tar", "-C", "/keys", "-c", "worker"], stdout=out)
            if p.wait(timeout=60) != 0:
                raise Fail("tar of the worker key volume failed:\n%s" % c.tail(copier))
        run(["tar", "-x", "--no-same-owner", "-C", keydir, "-f", tarball])
        uid, gid = c.user(image["user"])
        for root, dirs, files in os.walk(keydir + "/worker"):
            for x in [root] + [os.path.join(root, f) for f in files]:
                os.chown(x, uid, gid)
        env = {"JR_BROKER_HOST": reps["broker"][0]["ip"],
               "JR_INGESTER_HOST": reps["ingester"][0]["ip"],
               "JR_WORKER_KEYS_DIR": keydir + "/worker"}
        r = compose_config(workers_file, env)
        if r.returncode != 0:
            raise Fail("docker-compose -f %s config: %s" % (workers_file, r.stderr))
        remote["spec"] = yaml.safe_load(r.stdout)["services"]["worker"]
        rp = c.start(remote)
        c.procs.append((remote, rp))
        c.healthy(remote)

        # 300 mixed jobs from the client's namespace.
        lines = []
        for i in range(JOBS):
            if i % 3 == 0:
                lines.append('{"task": "echo", "vars": {"msg": "job %d"}}' % i)
            elif i % 3 == 1:
                lines.append('{"task": "sleep", "vars": {"ms": %d}, "priority": %d}'
                             % (5 + i % 20, i % 4))
            else:
                lines.append('{"task": "fail", "vars": {"error": "boom %d", "permanent": true},'
                             ' "max_attempts": 1}' % i)
        with open(os.path.join(client["dir"], "tmp", "jobs.jsonl"), "w") as f:
            f.write("\n".join(lines) + "\n")
        out_path = os.path.join(c.tmp, "submitted.txt")
        with open(out_path, "w") as out:
            p = c.start(client, command=["submit", "--file", "/tmp/jobs.jsonl"], stdout=out)
            try:
                rc = p.wait(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Fail("jr submit --file did not exit in 90 s")
        ids = [ln.strip() for ln in open(out_path) if ln.strip()]
        if rc != 0 or len(ids) != JOBS:
            raise Fail("jr submit --file: exit %d, %d ids of %d:\n%s"
                       % (rc, len(ids), JOBS, c.tail(client)))
        if len(set(ids)) != JOBS:
            raise Fail("jr submit --file printed %d distinct ids for %d jobs" % (len(set(ids)), JOBS))
        log("%d jobs accepted through the client namespace" % JOBS)

        dbs = [h for r in reps["ingester"] for h, t, _ in c.mounts(r) if t == "/data"]
        if not dbs:
            raise Fail("the ingester has no /data volume")
        db = os.path.join(dbs[0], "jr.db")

        def query(sql):
            res = run(["sqlite3", "-readonly", "-batch", db, sql], check=False)
            return res.stdout.split("\n")[:-1] if res.returncode == 0 else None

        def stored():
            for r, p in c.procs:
                if p.poll() is not None:
                    raise Fail("%s exited %d:\n%s" % (r["ns"], p.returncode, c.tail(r)))
            n = query("SELECT count(*) FROM results")
            return n and int(n[0]) >= JOBS

        wait_for("all %d results stored" % JOBS, stored, 90, 0.5)
        rows = query("SELECT id FROM results")
        if sorted(rows) != sorted(ids):
            extra = set(rows) - set(ids)
            missing = set(ids) - set(rows)
            raise Fail("stored ids differ from the accepted ones: %d missing, %d unexpected"
                       % (len(missing), len(extra)))
        dup = query("SELECT id FROM results GROUP BY id HAVING count(*) > 1")
        if dup:
            raise Fail("stored more than once: %s" % dup[:5])
        by = {}
        for ln in query("SELECT worker, count(*) FROM results GROUP BY worker"):
            w, n = ln.rsplit("|", 1)
            by[w] = int(n)
        log("stored per worker: " + ", ".join("%s %d" % kv for kv in sorted(by.items())))
        wreps = reps["worker"] + [remote]
        for r in wreps:
            n = sum(v for w, v in by.items() if w.endswith("@" + r["hostname"]))
            if n == 0:
                raise Fail("worker replica %s (hostname %s) ran no job" % (r["ns"], r["hostname"]))
        failed = query("SELECT count(*) FROM results WHERE success = 0")
        log("every accepted job stored once (%s failed on purpose); all %d worker replicas ran jobs"
            % (failed[0], len(wreps)))

        # docker compose stop: SIGTERM, in reverse start order; each must be
        # gone within its stop_grace_period, or Docker would SIGKILL it.
        for r, p in reversed(c.procs):
            bound = seconds(r["spec"].get("stop_grace_period", "10s"))
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=bound)
            except subprocess.TimeoutExpired:
                raise Fail("%s still runs %g s (stop_grace_period) after SIGTERM:\n%s"
                           % (r["ns"], bound, c.tail(r)))
            if rc != 0:
                raise Fail("%s exited %d on SIGTERM:\n%s" % (r["ns"], rc, c.tail(r)))
        log("every service stopped on SIGTERM within its stop_grace_period, exit 0")
    except Fail:
        for r, p in c.procs:
            log("--- %s (%s):\n%s" % (r["ns"], "running" if p.poll() is None
                                    else "exit %d" % p.returncode, c.tail(r, 8)))
        raise
    finally:
        c.close()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("image", "topology"):
        print("usage: compose_test.py image|topology SRC BUILD", file=sys.stderr)
        return 2
    mode, src, build = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    # ctest's timeout, ^C: end through the finally blocks, which clean up
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    try:
        if mode == "image":
            check_image(src, build)
        else:
            if os.geteuid() != 0:
                log("skipped: not root (network namespaces and mounts need it)")
                return 77
            topology(src, build)
    except Fail as e:
        log("FAIL: %s" % e)
        return 1
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
