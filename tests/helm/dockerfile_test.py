#!/usr/bin/env python3
"""Lints docker/*.Dockerfile without a Docker engine.

  dockerfile_test.py --root REPO [--build-dir BUILD --build-type TYPE] [--binary NAME=PATH]...

For each image: a debian:bookworm build stage that builds with docker/build-binaries, whose
packages all come from scripts/setup; a debian:bookworm-slim runtime stage with no -dev package,
a numeric non-root USER, an exec-form ENTRYPOINT, and binaries that the build stage produced.
When a shipped binary has been built (--binary), every library `ldd` shows for it must come from
a package that the runtime stage installs, pulls in as a dependency, or that bookworm-slim already
holds, or be one of the project's own libraries (under --build-dir), which the image copies from
/out/lib/<binary>; and every package the runtime stage installs must provide a library some
binary loads. The build stage is the same in every Dockerfile, so that the tree compiles once.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

IMAGES = {
    "agent.Dockerfile": ["instaface-agent", "instafacectl"],
    "graphserver.Dockerfile": ["instaface-graphserver"],
    "bot.Dockerfile": ["instaface-bot"],
}

# The Priority: required packages that make up debian:bookworm-slim. They and their dependencies
# (libsystemd0, libgnutls30 and so on, resolved through dpkg) are in every image already.
SLIM_ROOTS = [
    "base-files",
    "base-passwd",
    "bash",
    "coreutils",
    "dash",
    "debianutils",
    "diffutils",
    "dpkg",
    "findutils",
    "grep",
    "gzip",
    "hostname",
    "init-system-helpers",
    "libc-bin",
    "libc6",
    "libgcc-s1",
    "libstdc++6",
    "login",
    "mount",
    "ncurses-bin",
    "passwd",
    "perl-base",
    "sed",
    "sysvinit-utils",
    "tar",
    "util-linux",
    "apt",
    "zlib1g",
]


SANITIZER = re.compile(r"lib(asan|tsan|ubsan|lsan|msan)\.so")


class Failures:
    def __init__(self):
        self.items = []

    def check(self, condition, message):
        if not condition:
            self.items.append(message)
        return condition


def instructions(text):
    """(KEYWORD, arguments) pairs, with continuations joined and comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages(parsed):
    out = []
    for keyword, args in parsed:
        if keyword == "FROM":
            parts = args.split()
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            out.append({"from": parts[0], "as": alias, "steps": []})
        elif out:
            out[-1]["steps"].append((keyword, args))
    return out


def apt_installs(run_args):
    """Package names given to `apt-get install` inside one RUN command line."""
    packages = []
    for command in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(command)
        if "apt-get" in words and "install" in words:
            for word in words[words.index("install") + 1 :]:
                if not word.startswith("-") and "=" not in word:
                    packages.append(word)
    return packages


def bash_array(text, name):
    match = re.search(rf"^{name}=\((.*?)^\)", text, re.S | re.M)
    if not match:
        return None
    body = "\n".join(line.split("#", 1)[0] for line in match.group(1).splitlines())
    return body.split()


def package_of(path):
    """The Debian package that holds a file, trying both sides of the /usr merge."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/lib"):
            candidates.append("/usr" + p)
        elif p.startswith("/usr/lib"):
            candidates.append(p[len("/usr") :])
    for p in candidates:
        result = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].strip()
    return None


def dependency_closure(roots):
    """Every package that installing ROOTS brings along, per this machine's dpkg database."""
    seen, todo = set(), list(roots)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
            capture_output=True,
            text=True,
        )
        for clause in result.stdout.split(","):
            for alternative in clause.split("|"):
                name = re.sub(r"\(.*?\)", "", alternative).strip().split(":", 1)[0]
                if name:
                    todo.append(name)
    return seen


def ldd_libraries(binary, f):
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if not f.check(result.returncode == 0, f"ldd {binary} failed: {result.stderr.strip()}"):
        return []
    libs = []
    for line in result.stdout.splitlines():
        if "not found" in line:
            f.check(False, f"{binary}: {line.strip()}")
        match = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if match:
            libs.append(match.group(1))
    return libs


def check_image(root, dockerfile, binaries, built, build_dir, build_type, f):
    """Checks one Dockerfile; returns its build stage's instructions."""
    path = os.path.join(root, "docker", dockerfile)
    if not f.check(os.path.isfile(path), f"docker/{dockerfile} is missing"):
        return None
    text = open(path).read()
    parsed = stages(instructions(text))
    name = dockerfile
    if not f.check(len(parsed) >= 2, f"{name}: not a multi-stage build"):
        return None
    build, runtime = parsed[0], parsed[-1]
    check_runtime(name, text, build, runtime, binaries, built, build_dir, build_type, f)
    return build["steps"]


def check_runtime(name, text, build, runtime, binaries, built, build_dir, build_type, f):
    f.check(
        build["from"] == "debian:bookworm",
        f"{name}: build stage is {build['from']}, not debian:bookworm",
    )
    f.check(
        runtime["from"] == "debian:bookworm-slim",
        f"{name}: runtime stage is {runtime['from']}, not debian:bookworm-slim",
    )

    # The build stage runs docker/build-binaries for exactly the binaries it ships.
    built_targets = []
    for keyword, args in build["steps"]:
        if keyword == "RUN" and "build-binaries build" in args:
            words = shlex.split(args)
            built_targets += words[words.index("build") + 2 :]
    f.check(
        any(k == "RUN" and "build-binaries deps" in a for k, a in build["steps"]),
        f"{name}: the build stage does not install packages with build-binaries deps",
    )

    copies, lib_dirs, ldconfig_after_libs = {}, set(), False
    for keyword, args in runtime["steps"]:
        if keyword == "COPY" and "--from=" in args:
            words = [w for w in args.split() if not w.startswith("--")]
            for source in words[:-1]:
                if source.startswith("/out/lib/"):
                    # build-binaries puts each binary's own libraries in /out/lib/<binary>.
                    lib_dirs.add(source[len("/out/lib/") :].strip("/"))
                else:
                    f.check(
                        source.startswith("/out/bin/"),
                        f"{name}: copies {source}, not from /out/bin or /out/lib",
                    )
                    copies[os.path.basename(source)] = words[-1]
        if keyword == "RUN" and lib_dirs and "ldconfig" in args:
            ldconfig_after_libs = True
    f.check(
        sorted(copies) == sorted(binaries),
        f"{name}: ships {sorted(copies)}, expected {sorted(binaries)}",
    )
    for binary in copies:
        f.check(
            binary in built_targets, f"{name}: ships {binary}, which its build stage does not build"
        )
    f.check(
        lib_dirs == set(binaries),
        f"{name}: copies the project's libraries of {sorted(lib_dirs)} (/out/lib/<binary>), "
        f"not of {sorted(binaries)}",
    )
    f.check(
        ldconfig_after_libs, f"{name}: no ldconfig after copying the project's shared libraries"
    )

    # User: numeric so that the kubelet can verify runAsNonRoot, and not root.
    users = [a for k, a in runtime["steps"] if k == "USER"]
    if f.check(users, f"{name}: the runtime stage has no USER"):
        uid = users[-1].split(":", 1)[0]
        f.check(
            uid.isdigit() and int(uid) != 0,
            f"{name}: USER {users[-1]} is not a numeric non-root uid",
        )
        f.check(uid == "10001", f"{name}: USER is {uid}, not 10001")
        f.check(
            re.search(r"useradd[^&]*--uid\s+" + re.escape(uid), text),
            f"{name}: uid {uid} is not created with useradd",
        )

    entry = [a for k, a in runtime["steps"] if k == "ENTRYPOINT"]
    if f.check(entry, f"{name}: no ENTRYPOINT"):
        f.check(
            entry[-1].startswith("["), f"{name}: ENTRYPOINT is shell form; the image needs no shell"
        )
        f.check(
            any(b in entry[-1] for b in binaries), f"{name}: ENTRYPOINT runs none of its binaries"
        )

    runtime_runs = [a for k, a in runtime["steps"] if k == "RUN"]
    runtime_packages = [p for run in runtime_runs for p in apt_installs(run)]
    for pkg in runtime_packages:
        f.check(
            not pkg.endswith("-dev") and pkg not in ("build-essential", "cmake", "pkg-config"),
            f"{name}: runtime stage installs build package {pkg}",
        )
    for run in runtime_runs:
        if "apt-get install" in run:
            f.check(
                "--no-install-recommends" in run,
                f"{name}: apt-get install without --no-install-recommends",
            )
            f.check(
                "rm -rf /var/lib/apt/lists" in run, f"{name}: apt lists stay in the runtime image"
            )
            f.check(
                "apt-get clean" in run and "/var/cache/apt/*.bin" in run,
                f"{name}: apt's package caches stay in the runtime image",
            )

    # Libraries: what the built binaries load must be in the image, and nothing more.
    present = {b: built[b] for b in binaries if b in built and os.path.isfile(built[b])}
    if not present:
        print(f"note: {name}: none of {binaries} is built here; library check skipped")
        return
    if not shutil.which("dpkg-query") or not shutil.which("ldd"):
        print(f"note: {name}: no dpkg-query or ldd on this machine; library check skipped")
        return
    loaded = {binary: ldd_libraries(path, f) for binary, path in present.items()}
    # A Debug or sanitizer build loads libraries that the images' Release build does not (the
    # sanitizer runtimes, Boost.System's stub), so only an optimized build is compared.
    sanitized = [
        b for b, libs in loaded.items() if any(SANITIZER.match(os.path.basename(l)) for l in libs)
    ]
    if sanitized or (build_type or "").lower() in ("debug", ""):
        print(f"note: {name}: not an optimized build without sanitizers; library check skipped")
        return
    base = dependency_closure(SLIM_ROOTS)
    installed = dependency_closure(runtime_packages) | base
    used_packages, project_libs = set(), set()
    for binary, libs in loaded.items():
        for lib in libs:
            if build_dir and os.path.realpath(lib).startswith(os.path.realpath(build_dir) + os.sep):
                # Built by the project: docker/build-binaries copies these to /out/lib.
                project_libs.add(os.path.basename(lib))
                continue
            pkg = package_of(lib)
            if not f.check(
                pkg is not None, f"{name}: {binary} loads {lib}, which no Debian package holds"
            ):
                continue
            used_packages.add(pkg)
            f.check(
                pkg in installed,
                f"{name}: {binary} loads {os.path.basename(lib)} from {pkg}, "
                f"which the runtime stage does not install",
            )
    if len(present) == len(binaries):
        for pkg in runtime_packages:
            f.check(
                pkg in used_packages,
                f"{name}: runtime stage installs {pkg}, which none of its binaries loads",
            )
    print(
        f"checked libraries of {sorted(present)} in {name}: packages "
        f"{sorted(used_packages - base)}, project libraries {sorted(project_libs)}"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True)
    parser.add_argument("--binary", action="append", default=[], help="NAME=PATH of a built binary")
    parser.add_argument("--build-type", default="Release", help="CMAKE_BUILD_TYPE of the binaries")
    parser.add_argument(
        "--build-dir", help="the build tree: libraries under it are the project's own"
    )
    args = parser.parse_args()
    built = dict(b.split("=", 1) for b in args.binary)

    f = Failures()
    setup = bash_array(open(os.path.join(args.root, "scripts", "setup")).read(), "packages")
    build_script = os.path.join(args.root, "docker", "build-binaries")
    build_packages = (
        bash_array(open(build_script).read(), "packages") if os.path.isfile(build_script) else None
    )
    if f.check(
        setup and build_packages,
        "cannot read the package lists of scripts/setup and docker/build-binaries",
    ):
        extra = sorted(set(build_packages) - set(setup))
        f.check(
            not extra, f"docker/build-binaries installs packages scripts/setup does not: {extra}"
        )
    f.check(os.access(build_script, os.X_OK), "docker/build-binaries is not executable")
    ignore = os.path.join(args.root, ".dockerignore")
    if f.check(
        os.path.isfile(ignore), "no .dockerignore: build trees would enter the build context"
    ):
        patterns = open(ignore).read().split()
        f.check(
            ".git" in patterns and "build-*" in patterns, ".dockerignore lets .git or build-* in"
        )

    build_stages = {}
    for dockerfile, binaries in IMAGES.items():
        steps = check_image(
            args.root, dockerfile, binaries, built, args.build_dir, args.build_type, f
        )
        if steps is not None:
            build_stages[dockerfile] = steps
    # One build stage for all: built one after another, the images compile the tree once and
    # take the rest from the build cache.
    first = next(iter(build_stages), None)
    for dockerfile, steps in build_stages.items():
        f.check(
            steps == build_stages[first],
            f"{dockerfile}: its build stage differs from {first}'s, so the tree would be "
            "compiled again for it",
        )

    for item in f.items:
        print(f"FAIL: {item}")
    if not f.items:
        print(f"ok: {len(IMAGES)} Dockerfiles pass")
    return 1 if f.items else 0


if __name__ == "__main__":
    sys.exit(main())
