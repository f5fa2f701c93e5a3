#!/usr/bin/env python3
"""Side-by-side benchmark: `promoter run --confirm` against `skopeo sync --all
--preserve-digests` doing the same work, alternated A/B/A/B.

One source `docker-registry` holds IMAGES two-platform images (each platform:
a base layer shared by both platforms plus its own layer, each 1 to 4 MiB of
incompressible data in a real gzip tar), spread over REPOS repositories. Each
measurement starts DESTS fresh destination registries and promotes every
image to all of them, then measures a no-op re-run.

skopeo runs as DESIGN.md describes: one `skopeo sync` process per
destination, in parallel. Its source is a `--src yaml` file naming the same
repositories and tags on the source registry (read through the docker
transport), because `--src docker` takes a single repository per process.

Measured: wall time of the copy and of the no-op, the requests the registries
logged during the no-op (from their own logs), peak RSS (ru_maxrss from
`/usr/bin/time -f %M`; for skopeo the largest of its processes and their
sum), and CPU seconds (user + system) of the tool (`/usr/bin/time -f %U %S`,
summed over skopeo's processes) and of the registries serving it (from
/proc/<pid>/stat), which shows where a CPU-bound machine spends its time.

Also measured in each round: the registry-ingest floor, a client that only
uploads the same blobs into DESTS fresh registries (POST + monolithic PUT,
FLOOR_THREADS=8 in flight per destination, bytes from the source's storage
on disk), with no manifest, no read from a registry and no check. The
report gives promoter's copy as a ratio to skopeo and to that floor. Run
through bench/promote.sh.
"""

import gzip
import hashlib
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

IMAGES = int(os.environ.get("IMAGES", "50"))
REPOS = int(os.environ.get("REPOS", "10"))
DESTS = int(os.environ.get("DESTS", "4"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
MIN_MIB = float(os.environ.get("MIN_MIB", "1"))
MAX_MIB = float(os.environ.get("MAX_MIB", "4"))
PROMOTER = os.environ.get("PROMOTER", "target/release/promoter")
# A second promoter build, measured in the same rounds as "promoter-b": an
# A/B of two builds on the same machine state.
PROMOTER_B = os.environ.get("PROMOTER_B")
PROMOTERS = {"promoter": PROMOTER, **({"promoter-b": PROMOTER_B} if PROMOTER_B else {})}
SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")
REGISTRY = os.environ.get("REGISTRY", "/usr/bin/docker-registry")
TIME = os.environ.get("TIME_BIN", "/usr/bin/time")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join(
    [
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """A docker-registry on 127.0.0.1 with a random port, logging every
    request to a file."""

    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                "http:\n  addr: 127.0.0.1:0\n  secret: promoter-bench\n"
            )
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [REGISTRY, "serve", config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            m = re.search(rb"listening on (127\.0\.0\.1:\d+)", open(self.log_path, "rb").read())
            if m:
                self.host = m.group(1).decode()
                return
            time.sleep(0.01)
        raise SystemExit(f"{REGISTRY} did not start: see {self.log_path}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def mark(self):
        """Byte offset of the log once it has been quiet for 200 ms (the
        registry logs a request just after answering it)."""
        size = -1
        while True:
            now = os.path.getsize(self.log_path)
            if now == size:
                return now
            size = now
            time.sleep(0.2)

    def requests_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            lines = f.read().decode(errors="replace").splitlines()
        out = []
        for line in lines:
            if 'msg="response completed' not in line:
                continue
            method = re.search(r"http\.request\.method=(\S+)", line).group(1)
            uri = re.search(r"http\.request\.uri=(\S+)", line).group(1).strip('"')
            out.append((method, uri))
        return out

    def url(self, path):
        return f"http://{self.host}{path}"


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as resp:
        return resp.status, dict(resp.headers), resp.read()


# (repository, digest) of every blob pushed to the source, for the floor.
PUSHED_BLOBS = set()


def push_blob(reg, repo, data):
    digest = sha256(data)
    PUSHED_BLOBS.add((repo, digest))
    _, headers, _ = request("POST", reg.url(f"/v2/{repo}/blobs/uploads/"))
    location = headers["Location"]
    if location.startswith("/"):
        location = reg.url(location)
    sep = "&" if "?" in location else "?"
    request(
        "PUT",
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    return digest


def push_manifest(reg, repo, ref, media_type, data):
    request(
        "PUT",
        reg.url(f"/v2/{repo}/manifests/{ref}"),
        data=data,
        headers={"Content-Type": media_type},
    )


def layer(rng, name):
    """A gzip tar of one file of 1-4 MiB random bytes (stored blocks:
    valid gzip, as large as the data, fast to make)."""
    size = int(rng.uniform(MIN_MIB, MAX_MIB) * (1 << 20))
    payload = os.urandom(size)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    raw = tar_bytes.getvalue()
    return gzip.compress(raw, compresslevel=0, mtime=0), sha256(raw)


def push_image(src, repo, tag, seed):
    """Build and push one two-platform image; returns its index digest."""
    rng = random.Random(seed)
    base, base_diff = layer(rng, "base.bin")
    base_digest = push_blob(src, repo, base)
    children = []
    for arch in ("amd64", "arm64"):
        own, own_diff = layer(rng, f"{arch}.bin")
        own_digest = push_blob(src, repo, own)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Labels": {"seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": [base_diff, own_diff]},
            }
        ).encode()
        config_digest = push_blob(src, repo, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": d,
                        "size": s,
                    }
                    for d, s in ((base_digest, len(base)), (own_digest, len(own)))
                ],
            }
        ).encode()
        push_manifest(src, repo, sha256(manifest), OCI_MANIFEST, manifest)
        children.append((arch, sha256(manifest), len(manifest)))
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": d,
                    "size": s,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for arch, d, s in children
            ],
        }
    ).encode()
    push_manifest(src, repo, tag, OCI_INDEX, index)
    return sha256(index)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(registries):
    """User + system CPU seconds the registry processes have used so far."""
    total = 0.0
    for reg in registries:
        with open(f"/proc/{reg.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def run_measured(commands, scratch):
    """Run commands in parallel, each under `/usr/bin/time -f "%M %U %S"`;
    returns (wall seconds, [peak RSS KiB per process], [exit codes], CPU
    seconds summed over the processes). (wait4's ru_maxrss from Python
    would include the forked Python's own pages, which survive into the
    exec'd program's high-water mark.)"""
    started = time.monotonic()
    procs = []
    for i, (cmd, stdout) in enumerate(commands):
        rss_file = os.path.join(scratch, f"rss-{i}")
        procs.append(
            (
                subprocess.Popen(
                    [TIME, "-f", "%M %U %S", "-o", rss_file] + cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stdout,
                ),
                rss_file,
            )
        )
    rss, codes, cpu = [], [], 0.0
    for p, rss_file in procs:
        codes.append(p.wait())
        with open(rss_file) as f:
            # GNU time puts a note above the figures when the exit code is not 0.
            kib, user, system = f.read().splitlines()[-1].split()
        rss.append(int(kib))
        cpu += float(user) + float(system)
    return time.monotonic() - started, rss, codes, cpu


def blob_path(src, digest):
    """Where the source docker-registry keeps a blob's bytes."""
    hex_ = digest.split(":", 1)[1]
    return os.path.join(
        src.dir, "storage/docker/registry/v2/blobs/sha256", hex_[:2], hex_, "data"
    )


def upload_floor(src, dests, blobs):
    """The registry-ingest floor: upload every (repository, blob) the
    promotion writes to every destination (POST, then a monolithic PUT),
    FLOOR_THREADS uploads in flight per destination over persistent
    connections, bytes read from the source's storage (the page cache):
    no manifests, no reads from a registry, no checks. Returns wall seconds."""
    import http.client
    import threading

    threads = int(os.environ.get("FLOOR_THREADS", "8"))
    local = threading.local()

    def connection(host):
        conns = local.__dict__.setdefault("conns", {})
        if host not in conns:
            conns[host] = http.client.HTTPConnection(host, timeout=120)
        return conns[host]

    def call(host, method, path, body=None, headers=None):
        conn = connection(host)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 300:
            raise SystemExit(f"floor: {method} {host}{path}: {resp.status}")
        return resp

    def upload(job):
        dest, repo, digest = job
        resp = call(dest.host, "POST", f"/v2/prod/{repo[len('staging/'):]}/blobs/uploads/")
        location = resp.getheader("Location")
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        with open(blob_path(src, digest), "rb") as f:
            data = f.read()
        call(
            dest.host,
            "PUT",
            f"{location}{sep}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    # Interleave destinations so that each keeps `threads` uploads busy.
    jobs = [(d, repo, digest) for repo, digest in sorted(blobs) for d in dests]
    started = time.monotonic()
    with ThreadPoolExecutor(threads * len(dests)) as pool:
        list(pool.map(upload, jobs))
    return time.monotonic() - started


def main():
    for tool in (*PROMOTERS.values(), SKOPEO, REGISTRY, TIME):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"missing {tool}")
    root = tempfile.mkdtemp(prefix="promoter-bench-")
    registries = []
    try:
        bench(root, registries)
    finally:
        for reg in registries:
            if reg.proc.poll() is None:
                reg.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {root} (each run's output is in work/)")
        else:
            shutil.rmtree(root, ignore_errors=True)


def bench(root, registries):
    src = Registry(root, "source")
    registries.append(src)
    # Images: img00..img{REPOS-1}, IMAGES spread evenly, tags v0, v1, ...
    layout = [(f"img{i % REPOS:02d}", f"v{i // REPOS}") for i in range(IMAGES)]
    print(
        f"generating {IMAGES} two-platform images in {REPOS} repositories "
        f"(layers {MIN_MIB:g}-{MAX_MIB:g} MiB) on {src.host} ...",
        flush=True,
    )
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        digests = list(
            pool.map(
                lambda args: push_image(src, f"staging/{args[1][0]}", args[1][1], args[0]),
                enumerate(layout),
            )
        )
    stored = 0
    for dirpath, _, files in os.walk(os.path.join(src.dir, "storage")):
        stored += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(
        f"  {stored / (1 << 20):.0f} MiB in the source in {time.monotonic() - started:.1f} s; "
        f"{DESTS} destinations, {stored * DESTS / (1 << 20):.0f} MiB to write per copy",
        flush=True,
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

    results = []
    for rnd in range(ROUNDS):
        for tool in (*PROMOTERS, "skopeo"):
            dests = [Registry(root, f"{tool}-{rnd}-{i}") for i in range(DESTS)]
            registries.extend(dests)
            if tool in PROMOTERS:
                manifest = os.path.join(work, f"{tool}-{rnd}.yaml")
                with open(manifest, "w") as f:
                    f.write(f"registries:\n- name: {src.host}/staging\n  src: true\n")
                    for d in dests:
                        f.write(f"- name: {d.host}/prod\n")
                    f.write("images:\n")
                    for repo, tags in sorted(by_repo.items()):
                        f.write(f"- name: {repo}\n  dmap:\n")
                        for tag, digest in tags:
                            f.write(f'    "{digest}": ["{tag}"]\n')
                cmd = [PROMOTERS[tool], "run", "--confirm", "--format", "json", "--manifest", manifest]
                cmd += os.environ.get("PROMOTER_ARGS", "").split()
                commands = lambda out: [(cmd, out)]
            else:
                commands = lambda out: [
                    (
                        [
                            SKOPEO,
                            "--insecure-policy",
                            "sync",
                            "--all",
                            "--preserve-digests",
                            "--src-tls-verify=false",
                            "--dest-tls-verify=false",
                            "--src",
                            "yaml",
                            "--dest",
                            "docker",
                            sync_yaml,
                            f"{d.host}/prod",
                        ],
                        out,
                    )
                    for d in dests
                ]
            row = {"round": rnd + 1, "tool": tool}
            for phase in ("copy", "noop"):
                marks = [r.mark() for r in [src] + dests]
                log_path = os.path.join(work, f"{tool}-{rnd}-{phase}.log")
                registry_cpu = cpu_seconds([src] + dests)
                with open(log_path, "wb") as out:
                    seconds, rss, codes, cpu = run_measured(commands(out), work)
                registry_cpu = cpu_seconds([src] + dests) - registry_cpu
                if any(codes):
                    sys.stdout.write(open(log_path, errors="replace").read()[-4000:])
                    raise SystemExit(f"{tool} {phase} failed: exit codes {codes}")
                logged = [r.requests_since(m) for r, m in zip([src] + dests, marks)]
                row[f"{phase}_s"] = seconds
                row[f"{phase}_cpu_s"] = cpu
                row[f"{phase}_registry_cpu_s"] = registry_cpu
                row[f"{phase}_rss_kib"] = max(rss)
                row[f"{phase}_rss_sum_kib"] = sum(rss)
                row[f"{phase}_requests"] = sum(len(x) for x in logged)
                row[f"{phase}_source_requests"] = len(logged[0])
                row[f"{phase}_kinds"] = kinds(sum(logged, []))
            verify(dests, by_repo)
            for d in dests:
                d.stop()
                registries.remove(d)
            results.append(row)
            print(
                f"  round {row['round']} {tool:<8} copy {row['copy_s']:6.2f} s   "
                f"no-op {row['noop_s']:5.2f} s ({row['noop_requests']} requests)   "
                f"peak RSS {row['copy_rss_kib'] / 1024:.0f} MiB   "
                f"copy CPU {row['copy_cpu_s']:.2f} s + registries {row['copy_registry_cpu_s']:.2f} s",
                flush=True,
            )
        dests = [Registry(root, f"floor-{rnd}-{i}") for i in range(DESTS)]
        registries.extend(dests)
        registry_cpu = cpu_seconds(dests)
        client_cpu = time.process_time()
        row = {"round": rnd + 1, "tool": "floor", "copy_s": upload_floor(src, dests, PUSHED_BLOBS)}
        row["copy_cpu_s"] = time.process_time() - client_cpu
        row["copy_registry_cpu_s"] = cpu_seconds(dests) - registry_cpu
        for d in dests:
            d.stop()
            registries.remove(d)
        results.append(row)
        print(
            f"  round {row['round']} floor    copy {row['copy_s']:6.2f} s   "
            f"(blob uploads only: {len(PUSHED_BLOBS)} blobs x {DESTS} destinations)   "
            f"CPU {row['copy_cpu_s']:.2f} s + registries {row['copy_registry_cpu_s']:.2f} s",
            flush=True,
        )
    report(results, by_repo)


def kinds(requests):
    """Counts by kind: ping, tags/list, manifest HEAD/GET/PUT, blob ..."""
    out = {}
    for method, uri in requests:
        if uri == "/v2/":
            kind = "ping"
        elif "/tags/list" in uri:
            kind = "tags/list"
        elif "/manifests/" in uri:
            kind = f"manifest {method}"
        elif "/blobs/uploads" in uri:
            kind = f"upload {method}"
        elif "/blobs/" in uri:
            kind = f"blob {method}"
        else:
            kind = f"other {method}"
        out[kind] = out.get(kind, 0) + 1
    return out


def verify(dests, by_repo):
    """Every destination tag resolves to the source digest."""
    for d in dests:
        for repo, tags in by_repo.items():
            for tag, digest in tags:
                status, headers, _ = request(
                    "HEAD", d.url(f"/v2/prod/{repo}/manifests/{tag}"), headers={"Accept": ACCEPT}
                )
                got = headers.get("Docker-Content-Digest")
                if status != 200 or got != digest:
                    raise SystemExit(f"{d.host}/prod/{repo}:{tag} is {got}, expected {digest}")


def report(results, by_repo):
    def med(tool, key):
        return statistics.median(r[key] for r in results if r["tool"] == tool)

    print()
    print(
        f"{'round':>5} {'tool':<9} {'copy s':>7} {'no-op s':>8} {'no-op req':>9} "
        f"{'copy RSS MiB':>12} {'no-op RSS MiB':>13}"
    )
    for r in results:
        if r["tool"] == "floor":
            continue
        print(
            f"{r['round']:>5} {r['tool']:<9} {r['copy_s']:>7.2f} {r['noop_s']:>8.2f} "
            f"{r['noop_requests']:>9} {r['copy_rss_kib'] / 1024:>12.1f} {r['noop_rss_kib'] / 1024:>13.1f}"
        )
    print()
    minimum = DESTS * len(by_repo)
    print(f"medians over {ROUNDS} round(s); skopeo RSS is the largest of its {DESTS} processes")
    for tool in PROMOTERS:
        if tool != "promoter":
            print(f"{tool}: {PROMOTERS[tool]}")
        print(f"{'':<22} {tool:>10} {'skopeo':>10} {'ratio':>7}")
        for label, key, fmt in (
            ("copy wall time (s)", "copy_s", "{:.2f}"),
            ("no-op wall time (s)", "noop_s", "{:.2f}"),
            ("no-op requests", "noop_requests", "{:.0f}"),
            ("copy peak RSS (MiB)", "copy_rss_kib", "{:.1f}"),
            ("no-op peak RSS (MiB)", "noop_rss_kib", "{:.1f}"),
        ):
            p, s = med(tool, key), med("skopeo", key)
            if "rss" in key:
                p, s = p / 1024, s / 1024
            print(f"{label:<22} {fmt.format(p):>10} {fmt.format(s):>10} {p / s:>7.3f}")
    floor = med("floor", "copy_s")
    s = med("skopeo", "copy_s")
    print(
        f"registry-ingest floor (blob uploads only, {os.environ.get('FLOOR_THREADS', '8')} "
        f"in flight per destination): {floor:.2f} s; copy vs floor: "
        + ", ".join(f"{tool} {med(tool, 'copy_s') / floor:.2f}x" for tool in PROMOTERS)
        + f", skopeo {s / floor:.2f}x"
    )
    print(
        "copy CPU seconds (user + sys), the tool / the registries serving it: "
        + ", ".join(
            f"{tool} {med(tool, 'copy_cpu_s'):.2f} / {med(tool, 'copy_registry_cpu_s'):.2f}"
            for tool in (*PROMOTERS, "skopeo", "floor")
        )
        + " (the floor's registries are the destinations only: it reads the source's files)"
    )
    skopeo_sum = med("skopeo", "copy_rss_sum_kib") / 1024
    print(f"skopeo copy RSS summed over its {DESTS} processes: {skopeo_sum:.1f} MiB")
    print(
        f"inventory minimum for the no-op on distribution 2.8 (tags/list gives names, not digests): "
        f"{minimum} tag listings ({DESTS} destinations x {len(by_repo)} repositories) + "
        f"{DESTS * IMAGES} tag HEADs + at most one /v2/ ping per registry"
    )
    for tool in (*PROMOTERS, "skopeo"):
        last = [r for r in results if r["tool"] == tool][-1]
        print(f"  {tool} no-op requests by kind: {json.dumps(last['noop_kinds'], sort_keys=True)}")
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
