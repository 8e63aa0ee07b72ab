"""docs/install.md, steps 1-3, line by line on a fresh Debian 12 (bookworm) in a chroot.

The test reads the ```sh blocks of sections 1-3 of the guide and runs each line as root in a new
`debootstrap --variant=minbase` chroot, so the guide and the test cannot drift: a line that fails
here fails for a technician too (fix the guide, not the test). Only two things differ from a
technician's session: `<this repository>` is a read-only bind mount of this checkout (its
committed HEAD is what `git clone` takes), and `editor` is skipped (the example configuration is
used as it is). The pip configuration of this machine (`pip config list`: local wheel mirrors,
constraints) is written into the chroot's /etc/pip.conf and the folders it names are bind-mounted
read-only, so `pip install` finds what this machine's pip finds.

Step 4 (systemd) cannot run in a chroot: tests/test_deploy.py checks the units with
`systemd-analyze verify` and every command line of the guide against the CLI.

Every mount is `umount -l`-ed in a `finally`, and the chroot is removed only once no mount is
left inside it (a bind mount would let a removal reach this machine's files).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import IN_CI, ROOT

GUIDE = ROOT / "docs" / "install.md"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SOURCE = "/mnt/nsp-site-monitor"  # `<this repository>` inside the chroot
SITE_KEY = "0123456789abcdef0123456789abcdef\n"  # what the technician pastes into /dev/stdin
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
       "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}  # no tty: no debconf dialogs


def guide_lines(text: str) -> dict[int, list[str]]:
    """The command lines of the ```sh blocks per numbered section ("## 3. ..." -> 3)."""
    lines: dict[int, list[str]] = {}
    section, in_sh = 0, False
    for raw in text.splitlines():
        if m := re.match(r"## (\d+)\. ", raw):
            section = int(m.group(1))
        elif raw.strip() == "```sh":
            in_sh = True
        elif raw.strip() == "```":
            in_sh = False
        elif in_sh and raw.strip() and not raw.lstrip().startswith("#"):
            lines.setdefault(section, []).append(raw.strip())
    return lines


def chroot_lines(text: str) -> dict[int, list[str]]:
    """Steps 1-3 as the test runs them: the source substituted, the editor skipped."""
    steps = guide_lines(text)
    return {n: [li.replace("<this repository>", SOURCE) for li in steps.get(n, [])
                if not li.startswith("editor ")] for n in (1, 2, 3)}


def pip_settings() -> dict[str, str]:
    """This machine's effective pip options (files and PIP_* variables), e.g. find-links."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                          capture_output=True, text=True, timeout=60)
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"([^.]*)\.([\w-]+)='(.*)'$", line)
        if m and m.group(1) in (":env:", "global", "install"):
            (env if m.group(1) == ":env:" else files)[m.group(2)] = m.group(3)
    return files | env  # a PIP_* variable wins over a file, as in pip


def local_paths(settings: dict[str, str]) -> list[Path]:
    """The files and folders on this machine that the pip options name. For a local index
    (file:///x/simple) that is its parent: the index pages link to ../../files beside it."""
    found = []
    for value in settings.values():
        for word in value.split():
            path = Path(urlparse(word).path if word.startswith("file:") else word)
            path = path.parent if path.name == "simple" else path
            if path.is_absolute() and path != Path("/") and path.exists():
                found.append(path)
    return sorted(set(found))


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def kill_left_in(root: Path) -> None:
    """Kill processes still running inside this test's chroot (only the test started them)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "root") == str(root):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                continue


def run(argv: list[str], stdin: str | None = None, timeout: float = 600) -> tuple[int, str]:
    """Run argv in its own process group; on a timeout the whole group is killed."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV, start_new_session=True)
    try:
        out, _ = proc.communicate(stdin or "", timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -9, f"{out}\n(killed after {timeout} s)"
    return proc.returncode, out


class Chroot:
    """A fresh bookworm chroot in a temporary folder, with the mounts it needs."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nsp-install-"))
        self.mounted: list[Path] = []

    def mount(self, argv: list[str], target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        code, out = run(["mount", *argv, str(target)], timeout=60)
        assert code == 0, f"mount {argv} {target}: {out}"
        self.mounted.append(target)

    def bind_ro(self, source: Path, inside: str) -> None:
        target = self.root / inside.lstrip("/")
        self.mount(["--bind", str(source)], target)
        code, out = run(["mount", "-o", "remount,bind,ro", str(target)], timeout=60)
        assert code == 0, f"remount ro {target}: {out}"

    def prepare(self, settings: dict[str, str]) -> None:
        """Name resolution, /proc, the source and this machine's pip mirrors."""
        shutil.copyfile("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
        self.mount(["-t", "proc", "proc"], self.root / "proc")
        self.bind_ro(ROOT, SOURCE)
        # The checkout may belong to another user than root (CI): git would refuse to clone it.
        (self.root / "etc" / "gitconfig").write_text(f"[safe]\n\tdirectory = {SOURCE}\n")
        for path in local_paths(settings):
            if path.is_dir():
                self.bind_ro(path, str(path))
            else:
                # A file (CA bundle, constraints) gets its own name: step 1 installs Debian's
                # ca-certificates, which would replace a copy at /etc/ssl/certs.
                inside = "/etc/nsp-test-pip/" + str(path).strip("/").replace("/", "_")
                (self.root / "etc" / "nsp-test-pip").mkdir(exist_ok=True)
                shutil.copyfile(path, self.root / inside.lstrip("/"))
                settings = {k: v.replace(str(path), inside) for k, v in settings.items()}
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        (self.root / "etc" / "pip.conf").write_text(f"[global]\n{conf}")

    def sh(self, line: str, stdin: str | None = None) -> tuple[int, str]:
        return run(["chroot", str(self.root), "/bin/sh", "-c", line], stdin=stdin)

    def remove(self) -> None:
        """Unmount everything (lazily: nothing can hold it), then remove the folder."""
        kill_left_in(self.root)
        for target in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=60)
        left = mounts_under(self.root)
        assert not left, f"still mounted, {self.root} NOT removed: {left}"
        shutil.rmtree(self.root, ignore_errors=True)


def need_root_and_debootstrap() -> str:
    path = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None)
    if path is None or os.geteuid() != 0:
        message = "needs root and debootstrap: apt install debootstrap"
        if IN_CI:
            pytest.fail(message + " (CI must run this test)")
        pytest.skip(message)
    return path


def test_the_guide_has_the_steps_this_test_runs() -> None:
    steps = chroot_lines(GUIDE.read_text())
    assert any(li.startswith("apt-get install") for li in steps[1])
    assert any(li.startswith("adduser --system") for li in steps[1])
    assert f"git clone {SOURCE} /opt/nsp-site-monitor" in steps[2]
    assert any(li.endswith("nsp-edge --version") for li in steps[2])
    assert any("nsp-edge commission --config /etc/nsp-edge/site.toml" in li for li in steps[3])
    assert not any(li.startswith("editor") or "<this repository>" in li
                   for n in steps for li in steps[n])
    broken = chroot_lines(GUIDE.read_text().replace("```sh", "```text"))  # the check can fail
    assert broken == {1: [], 2: [], 3: []}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_steps_1_to_3_of_the_guide_on_a_fresh_debian(capsys: pytest.CaptureFixture[str]) -> None:
    debootstrap = need_root_and_debootstrap()
    steps = chroot_lines(GUIDE.read_text())
    timings: list[tuple[str, float]] = []
    box = Chroot()
    try:
        t0 = time.monotonic()
        code, out = run([debootstrap, "--variant=minbase", SUITE, str(box.root), MIRROR])
        assert code == 0, f"debootstrap exit {code}:\n{out[-3000:]}"
        timings.append((f"debootstrap --variant=minbase {SUITE}", time.monotonic() - t0))
        box.prepare(pip_settings())
        said: dict[str, str] = {}
        for n in (1, 2, 3):
            stage = time.monotonic()
            for line in steps[n]:
                t0 = time.monotonic()
                code, out = box.sh(line, stdin=SITE_KEY if "/dev/stdin" in line else None)
                timings.append((f"  {line.split('  #')[0].strip()}", time.monotonic() - t0))
                said[line] = out
                assert "Traceback" not in out, f"{line}:\n{out[-3000:]}"
                if "nsp-edge commission" in line:
                    # No node is reachable from a chroot: each one named, with a fix; exit 2.
                    assert code == 2, f"{line}: exit {code}\n{out[-3000:]}"
                    assert "Knooppunt power" in out and "ls /dev/ttyUSB" in out, out
                    assert "Totaal: FAIL" in out, out
                else:
                    assert code == 0, f"step {n}, `{line}` exit {code}:\n{out[-3000:]}"
            timings.append((f"step {n} total", time.monotonic() - stage))
        version = next(v for k, v in said.items() if k.endswith("nsp-edge --version"))
        assert version.startswith("nsp-edge 0.1.0"), version
        conf = box.root / "etc" / "nsp-edge"
        assert (conf / "site.toml").read_text() == (ROOT / "examples" / "site.toml").read_text()
        assert oct((conf / "site.key").stat().st_mode & 0o777) == "0o640"
        assert (conf / "site.key").read_text() == SITE_KEY
    finally:
        t0 = time.monotonic()
        try:
            box.remove()
            timings.append(("unmount and remove the chroot", time.monotonic() - t0))
        finally:
            with capsys.disabled():
                print("\ninstall guide on a fresh Debian chroot, wall time:")
                for what, seconds in timings:
                    print(f"  {seconds:6.1f} s  {what}")
