#!/usr/bin/env python3
"""deploy/container/Containerfile, checked without building it (no image registry here):
- every stage is Debian 12 (docker.io/library/debian:12 or :12-slim);
- the build stage installs scripts/setup.sh's build packages (less test and lint tools) and
  nothing else; the runtime stage installs the package of every shared library the built
  binary (GREY_BINARY) needs; on a Debian 12 host, apt knows every package named;
- COPY sources exist and are enough for the build stage's cmake configure; ENTRYPOINT,
  CMD, EXPOSE and GREY_CONFIG_DIR agree with the DaemonSet.

Run: GREY_BINARY=build/dev/grey-gpu-opt python3 tests/deploy/container_test.py
(exit 77: skipped, the reason printed)."""

import json
import os
import re
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_util as du  # noqa: E402

BINARY = os.environ.get("GREY_BINARY", "")
# scripts/setup.sh BUILD_DEPS that only the tests, linters or coverage need.
NOT_FOR_THE_IMAGE = {"clang", "clang-format", "libclang-rt-14-dev", "libgtest-dev",
                     "libgmock-dev", "libbenchmark-dev", "gcovr", "libspdlog-dev", "libfmt-dev"}


def parse_containerfile(path):
    """Stages: [{"from": image, "as": name, "instructions": [(KEYWORD, text)]}]."""
    text = du.read_text(path)
    text = re.sub(r"\\\n", " ", text)  # continuation lines
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kw, _, rest = line.partition(" ")
        kw = kw.upper()
        if kw == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
            stages.append({"from": m.group(1), "as": m.group(2), "instructions": []})
        else:
            stages[-1]["instructions"].append((kw, rest.strip()))
    return stages


def apt_installs(stage):
    pkgs = []
    for kw, text in stage["instructions"]:
        if kw != "RUN":
            continue
        for cmd in text.split("&&"):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def setup_build_deps():
    text = du.read_text(os.path.join(du.REPO, "scripts", "setup.sh"))
    m = re.search(r"BUILD_DEPS=\((.*?)\)", text, re.S)
    return m.group(1).split()


def needed_packages(binary):
    """Debian packages of the binary's DT_NEEDED libraries (as resolved on this host)."""
    r = du.run(["ldd", binary])
    if r.returncode != 0:
        raise AssertionError("ldd %s: %s" % (binary, r.stderr))
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            du.run(["readelf", "-d", binary]).stdout))
    pkgs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if not m or m.group(1) not in needed:
            continue
        real = os.path.realpath(m.group(2))
        owner = None
        for candidate in (m.group(2), real, real.replace("/usr/lib/", "/lib/", 1),
                          real.replace("/lib/", "/usr/lib/", 1)):
            q = du.run(["dpkg", "-S", candidate])
            if q.returncode == 0:
                owner = q.stdout.split(":")[0].strip()
                break
        pkgs[m.group(1)] = owner
    return pkgs


class Containerfile(du.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = parse_containerfile(du.CONTAINERFILE)
        cls.build = [s for s in cls.stages if s["as"] == "build"]
        cls.runtime = cls.stages[-1]
        ds = du.objects_of(du.render("base"), "DaemonSet")[0]
        cls.container = ds["spec"]["template"]["spec"]["containers"][0]

    def test_every_stage_is_debian_12(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for s in self.stages:
            self.assertRegex(s["from"], r"^(docker\.io/library/)?debian:(12|bookworm)(-slim)?$")

    def test_build_stage_installs_the_build_packages_of_setup_sh(self):
        self.assertEqual(len(self.build), 1)
        want = [p for p in setup_build_deps() if p not in NOT_FOR_THE_IMAGE]
        got = apt_installs(self.build[0])
        self.assertEqual(sorted(got), sorted(want))

    def test_runtime_stage_installs_every_shared_library_the_binary_needs(self):
        pkgs = needed_packages(BINARY)
        self.assertTrue(pkgs)
        got = set(apt_installs(self.runtime))
        for lib, pkg in pkgs.items():
            # The sanitizer runtimes of the test command's ASan+UBSan build are not linked by
            # the shipped binary (the image builds its own, -DCMAKE_BUILD_TYPE=Release).
            if os.environ.get("GREY_SANITIZED", "0") == "1" and re.match(
                    r"lib(asan|ubsan|tsan|lsan)\.so", lib):
                continue
            self.assertIsNotNone(pkg, "no Debian package owns %s on this host" % lib)
            self.assertIn(pkg, got, "%s (package %s) is not installed in the runtime stage"
                          % (lib, pkg))
        print("MEASURED runtime libraries: " + ", ".join(sorted(set(pkgs.values()))))

    def test_apt_knows_every_package_on_debian_12(self):
        try:
            version = du.read_text("/etc/debian_version").strip()
        except OSError:
            version = ""
        if not version.startswith("12") or du.need_tool("apt-cache", "apt"):
            self.skipTest("not a Debian 12 host (%r): cannot ask apt about bookworm" % version)
        pkgs = sorted({p for s in self.stages for p in apt_installs(s)})
        r = du.run(["apt-cache", "policy"] + pkgs)
        known = set(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (?!\(none\))",
                               r.stdout, re.M))
        self.assertEqual(set(pkgs) - known, set(), r.stdout[-3000:])

    def test_copy_sources_exist_and_stages_are_named(self):
        names = {s["as"] for s in self.stages}
        for s in self.stages:
            for kw, text in s["instructions"]:
                if kw != "COPY":
                    continue
                words = text.split()
                frm = [w for w in words if w.startswith("--from=")]
                srcs = [w for w in words if not w.startswith("--")][:-1]
                if frm:
                    self.assertIn(frm[0].split("=", 1)[1], names)
                    continue
                for src in srcs:
                    self.assertTrue(os.path.exists(os.path.join(du.REPO, src)), src)

    def test_the_copied_sources_configure(self):
        # What the build stage COPYs is enough for its cmake configure (a file the build needs
        # but the Containerfile does not copy fails here); building is left to podman.
        if du.need_tool("cmake", "cmake") or du.need_tool("ninja", "ninja-build"):
            self.skipTest("cmake or ninja not installed")
        import shutil
        import tempfile
        workdir = "/"
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "ctx")
            for kw, text in self.build[0]["instructions"]:
                if kw == "WORKDIR":
                    workdir = text
                if kw != "COPY":
                    continue
                words = text.split()
                dest = words[-1]
                dest = dest if dest.startswith("/") else os.path.join(workdir, dest)
                for src in words[:-1]:
                    s = os.path.join(du.REPO, src)
                    d = root + dest
                    if os.path.isdir(s):
                        shutil.copytree(s, d, dirs_exist_ok=True)
                    else:
                        os.makedirs(d if dest.endswith("/") else os.path.dirname(d),
                                    exist_ok=True)
                        shutil.copy(s, d)
            run = [r for kw, r in self.build[0]["instructions"]
                   if kw == "RUN" and r.startswith("cmake ")]
            configure = shlex.split(run[0].split("&&")[0])
            self.assertEqual(configure[:2], ["cmake", "-S"])
            configure = [a.replace("/src", root + "/src").replace("/build", tmp + "/build")
                         if a.startswith("/") else a for a in configure]
            r = du.run(configure)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-3000:])

    def test_entrypoint_cmd_port_and_state_match_the_daemonset(self):
        inst = {}
        for kw, text in self.runtime["instructions"]:
            inst.setdefault(kw, []).append(text)
        self.assertEqual(json.loads(inst["ENTRYPOINT"][-1]), self.container["command"])
        self.assertEqual(json.loads(inst["CMD"][-1]), self.container["args"])
        self.assertEqual([int(p) for p in inst["EXPOSE"]],
                         [p["containerPort"] for p in self.container["ports"]])
        env = {e["name"]: e.get("value") for e in self.container["env"]}
        self.assertIn("GREY_CONFIG_DIR=" + env["GREY_CONFIG_DIR"], inst["ENV"])
        image = self.container["image"]
        self.assertTrue(image.startswith("localhost/grey-gpu-opt:"), image)


if __name__ == "__main__":
    missing = du.need_yaml() + du.need_kustomize() + \
        du.need_tool("dpkg", "dpkg") + du.need_tool("readelf", "binutils")
    if not BINARY or not os.access(BINARY, os.X_OK):
        missing.append("GREY_BINARY (the built grey-gpu-opt) is not set or not executable")
    du.main(missing)
