#!/usr/bin/env python3
"""Rate-limit benchmark (issue 5): the same promotion through the same 429
front, in one run, by three contenders:

- promoter with its adaptive per-host limiter (the default);
- promoter `--limiter kpromo`: a simulation of kpromo's algorithm (one
  global 50 r/s limiter, burst 5, a 10 s pause of everything on each 429);
- `skopeo sync --all --preserve-digests --retry-times 5`.

A source `docker-registry` holds IMAGES two-platform images (made as
bench/promote.py makes them, with small layers) in REPOS repositories. For
each contender a fresh destination `docker-registry` starts behind Debian
`nginx` with `limit_req` at LIMIT r/s (burst BURST, status 429), and the
contender copies every image to it through nginx.

Measured per contender: wall time, the requests nginx saw and how many it
answered 429 (from its access log), the exit status, and the images missing
or wrong in the destination afterwards (checked on the registry directly,
not through the limit). A contender still running after TIMEOUT seconds is
killed and counted as failed. Run through bench/ratelimit.sh.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promote  # noqa: E402  (image generation and registries)

IMAGES = int(os.environ.get("IMAGES", "12"))
REPOS = int(os.environ.get("REPOS", "4"))
LIMIT = int(os.environ.get("LIMIT", "20"))
BURST = int(os.environ.get("BURST", "5"))
TIMEOUT = float(os.environ.get("TIMEOUT", "900"))
# Small layers: the limit, not the bytes, should set the pace.
promote.MIN_MIB = float(os.environ.get("MIN_KIB", "16")) / 1024
promote.MAX_MIB = float(os.environ.get("MAX_KIB", "64")) / 1024
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
PROMOTER = promote.PROMOTER
SKOPEO = promote.SKOPEO


class Nginx:
    """nginx on 127.0.0.1 proxying to `upstream` with `limit_req`, logging
    `$msec $status $request_method $uri` per request (the same front as
    tests/support/nginx.rs)."""

    def __init__(self, root, name, upstream):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "access.log")
        for _ in range(5):
            port = free_port()
            self.host = f"127.0.0.1:{port}"
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self.config(upstream))
            # Not our stdout: its workers would hold a pipe open.
            with open(os.path.join(self.dir, "error.log"), "ab") as err:
                self.proc = subprocess.Popen(
                    [NGINX, "-p", self.dir, "-c", conf, "-g", "daemon off;"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            if wait_listening(self.host, self.proc):
                return
        raise SystemExit("nginx did not start in 5 tries")

    def config(self, upstream):
        d = self.dir
        user = "user root;" if os.geteuid() == 0 else ""
        return f"""{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
    log_format timed '$msec $status $request_method $uri';
    access_log {d}/access.log timed;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 0;
    limit_req_zone $server_port zone=registry:1m rate={LIMIT}r/s;
    upstream registry {{ server {upstream}; keepalive 32; }}
    server {{
        listen {self.host};
        location / {{
            limit_req zone=registry burst={BURST};
            limit_req_status 429;
            limit_req_log_level info;
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""

    def statuses(self):
        try:
            with open(self.log_path) as f:
                return [line.split()[1] for line in f if len(line.split()) > 1]
        except FileNotFoundError:
            return []

    def stop(self):
        # SIGTERM: the master stops its workers (SIGKILL would orphan them).
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(host, proc):
    import socket

    addr, port = host.split(":")
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((addr, int(port)), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def missing_images(dest, by_repo):
    """Tags absent from the destination or not at the source digest
    (asked of the registry itself, past the limit)."""
    missing = 0
    for repo, tags in by_repo.items():
        for tag, digest in tags:
            try:
                status, headers, _ = promote.request(
                    "HEAD",
                    dest.url(f"/v2/prod/{repo}/manifests/{tag}"),
                    headers={"Accept": promote.ACCEPT},
                )
                ok = status == 200 and headers.get("Docker-Content-Digest") == digest
            except Exception:
                ok = False
            missing += not ok
    return missing


def main():
    for tool in (PROMOTER, SKOPEO, promote.REGISTRY, NGINX):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"missing {tool}")
    root = tempfile.mkdtemp(prefix="promoter-ratelimit-")
    procs = []
    try:
        bench(root, procs)
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def bench(root, procs):
    src = promote.Registry(root, "source")
    procs.append(src)
    layout = [(f"img{i % REPOS:02d}", f"v{i // REPOS}") for i in range(IMAGES)]
    print(
        f"generating {IMAGES} two-platform images in {REPOS} repositories "
        f"(layers {promote.MIN_MIB * 1024:g}-{promote.MAX_MIB * 1024:g} KiB) on {src.host} ...",
        flush=True,
    )
    with ThreadPoolExecutor(4) as pool:
        digests = list(
            pool.map(
                lambda a: promote.push_image(src, f"staging/{a[1][0]}", a[1][1], a[0]),
                enumerate(layout),
            )
        )
    by_repo = {}
    for (repo, tag), digest in zip(layout, digests):
        by_repo.setdefault(repo, []).append((tag, digest))
    work = os.path.join(root, "work")
    os.makedirs(work)
    sync_yaml = os.path.join(work, "sync.yaml")
    with open(sync_yaml, "w") as f:
        f.write(f"{src.host}:\n  tls-verify: false\n  images:\n")
        for repo, tags in sorted(by_repo.items()):
            f.write(f"    staging/{repo}: [{', '.join(t for t, _ in tags)}]\n")

    contenders = [
        ("promoter (adaptive)", []),
        ("promoter --limiter kpromo", ["--limiter", "kpromo"]),
        ("skopeo sync --retry-times 5", None),
    ]
    print(
        f"destination behind nginx limit_req {LIMIT} r/s, burst {BURST}, status 429; "
        f"timeout {TIMEOUT:g} s per contender",
        flush=True,
    )
    rows = []
    for i, (name, flags) in enumerate(contenders):
        dest = promote.Registry(root, f"dest-{i}")
        procs.append(dest)
        front = Nginx(root, f"nginx-{i}", dest.host)
        procs.append(front)
        if flags is not None:
            manifest = os.path.join(work, f"promoter-{i}.yaml")
            with open(manifest, "w") as f:
                f.write(f"registries:\n- name: {src.host}/staging\n  src: true\n")
                f.write(f"- name: {front.host}/prod\n")
                f.write("images:\n")
                for repo, tags in sorted(by_repo.items()):
                    f.write(f"- name: {repo}\n  dmap:\n")
                    for tag, digest in tags:
                        f.write(f'    "{digest}": ["{tag}"]\n')
            cmd = [PROMOTER, "run", "--confirm", "--format", "json", "--manifest", manifest]
            cmd += flags + os.environ.get("PROMOTER_ARGS", "").split()
        else:
            cmd = [
                SKOPEO,
                "--insecure-policy",
                "sync",
                "--all",
                "--preserve-digests",
                "--retry-times",
                "5",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--src",
                "yaml",
                "--dest",
                "docker",
                sync_yaml,
                f"{front.host}/prod",
            ]
        log_path = os.path.join(work, f"contender-{i}.log")
        with open(log_path, "wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            try:
                code = proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = "timeout"
            seconds = time.monotonic() - started
        time.sleep(0.3)  # let nginx write its last log lines
        statuses = front.statuses()
        row = {
            "name": name,
            "seconds": seconds,
            "requests": len(statuses),
            "throttled": statuses.count("429"),
            "exit": code,
            "missing": missing_images(dest, by_repo),
        }
        rows.append(row)
        print(
            f"  {name:<28} {seconds:7.1f} s  {row['requests']} requests, "
            f"{row['throttled']} x 429, exit {code}, {row['missing']} missing",
            flush=True,
        )
        if code != 0:
            with open(log_path, errors="replace") as f:
                sys.stdout.write("    last output: " + f.read()[-1500:].replace("\n", "\n    ") + "\n")
        front.stop()
        dest.stop()
        procs.remove(front)
        procs.remove(dest)

    print()
    print(f"{IMAGES} images, nginx limit_req {LIMIT} r/s burst {BURST} (429)")
    print(
        f"{'contender':<28} {'wall s':>8} {'requests':>9} {'429s':>6} {'exit':>8} {'missing':>8} {'failed':>7}"
    )
    for r in rows:
        failed = r["exit"] != 0 or r["missing"] > 0
        print(
            f"{r['name']:<28} {r['seconds']:>8.1f} {r['requests']:>9} {r['throttled']:>6} "
            f"{str(r['exit']):>8} {r['missing']:>8} {'yes' if failed else 'no':>7}"
        )
    adaptive, kpromo = rows[0], rows[1]
    ratio = adaptive["seconds"] / kpromo["seconds"]
    verdict = "met" if ratio <= 0.5 and adaptive["exit"] == 0 and adaptive["missing"] == 0 else "NOT met"
    print(f"wall time adaptive / kpromo mode: {ratio:.3f} (target <= 0.5, zero failures: {verdict})")
    print(f"wall time adaptive / skopeo: {adaptive['seconds'] / rows[2]['seconds']:.3f}")


if __name__ == "__main__":
    main()
