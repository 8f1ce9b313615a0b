"""
What users install: the wheel and the sdist are built from a copy of the
checkout (as ``python -m build`` does for a release), their file lists are
compared with ``gocast/``, and the wheel is installed into a fresh
virtualenv and started from another folder with nothing of the checkout on
``sys.path``: ``twistd gocast``, ``gocast serve`` and ``python -m gocast``,
with the dashboard's files and Swagger UI served.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

from twisted.internet import reactor, threads
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from gocast._version import __version__

from ..containers import exec_form, healthcheck_command, last
from ._process import ROOT, ServerProcess, eventually, free_port, wait_for_http
from .test_browser import open_chromium
from .test_daemon import stop_pid
from .test_dashboard import log_in

#: Left out of the copy the release is built from: what ./dev or a build makes.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "vendor", "build", "dist", "*.egg-info",
                                     "_trial_temp*", "__pycache__", "gocast-data")
#: Files the dashboard page and the player load that the build step brings from npm.
VENDOR_FILES = ("dashboard/vendor/uPlot.iife.min.js", "dashboard/vendor/uPlot.min.css",
                "player/vendor/hls.light.min.js")


def source_files():
    """Every file of ``gocast/`` a release must carry, relative to the checkout."""
    package = ROOT / "gocast"
    files = {str(p.relative_to(ROOT)) for p in package.rglob("*.py") if "node_modules" not in p.parts}
    for pages in ("dashboard", "player"):
        files |= {str(p.relative_to(ROOT)) for p in (package / pages / "static").iterdir()}
    files |= {"gocast/%s" % name for name in VENDOR_FILES}
    files.add("twisted/plugins/gocast_plugin.py")
    return files


class Release:
    """A wheel and an sdist built from a copy of the checkout, and a virtualenv holding the wheel."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.dist = folder / "dist"
        self.venv = folder / "venv"
        self.run_dir = folder / "elsewhere"

    def build(self):
        source = self.folder / "source"
        shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
        self._run([sys.executable, "-m", "build", "--outdir", str(self.dist), str(source)])
        venv.create(self.venv, with_pip=True)
        self._run([str(self.bin("pip")), "install", "--quiet", str(self.wheel)])
        self.run_dir.mkdir()
        return self

    def _run(self, argv):
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(self.folder),
                                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        if result.returncode:
            raise AssertionError("%s failed:\n%s" % (" ".join(argv), result.stdout.decode(errors="replace")[-4000:]))
        return result.stdout.decode()

    @property
    def wheel(self) -> Path:
        return next(self.dist.glob("gocast-*.whl"))

    @property
    def sdist(self) -> Path:
        return next(self.dist.glob("gocast-*.tar.gz"))

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


#: The release, once built: tests run one at a time, so the first builds it for all.
_built = {}


async def release(testcase):
    """The :class:`Release`, built by the first test that asks (a minute or so)."""
    if "error" in _built:
        raise AssertionError("the release could not be built:\n" + _built["error"])
    if "release" not in _built:
        folder = Path(os.path.abspath(testcase.mktemp()))
        folder.mkdir(parents=True)
        try:
            _built["release"] = await threads.deferToThread(Release(folder).build)
        except AssertionError as e:
            _built["error"] = str(e)
            raise
    return _built["release"]


class PackageContentsTests(TestCase):
    timeout = 600

    async def test_wheel_has_every_module_and_asset(self):
        built = await release(self)
        with zipfile.ZipFile(built.wheel) as wheel:
            names = set(wheel.namelist())
        missing = source_files() - names
        self.assertEqual(missing, set(), "files of gocast/ the wheel lacks")
        self.assertNotIn("twisted/plugins/__init__.py", names)  # would shadow Twisted's own plugins
        metadata = wheel_metadata(built.wheel)
        self.assertIn("License-Expression: MIT", metadata)
        self.assertIn("Requires-Python: >=3.11", metadata)
        self.assertIn("Requires-Dist: Twisted[tls]>=25.5", metadata)

    async def test_sdist_has_every_module_asset_and_build_file(self):
        built = await release(self)
        with tarfile.open(built.sdist) as sdist:
            prefix = "gocast-%s/" % __version__
            names = {name[len(prefix):] for name in sdist.getnames()}
        expected = source_files() | {"LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in",
                                     "Dockerfile", ".dockerignore", "docker-compose.yml", "contrib/gocast.service",
                                     "gocast/dashboard/package.json", "gocast/dashboard/package-lock.json",
                                     "gocast/player/package.json", "gocast/player/package-lock.json"}
        self.assertEqual(expected - names, set(), "files the sdist lacks")
        self.assertFalse([n for n in names if "node_modules" in n])

    def test_every_folder_of_python_is_a_package(self):
        """find_packages() leaves out a folder without __init__.py (gocast.auth once was)."""
        folders = {p.parent for p in (ROOT / "gocast").rglob("*.py") if "node_modules" not in p.parts}
        self.assertEqual([str(f) for f in folders if not (f / "__init__.py").exists()], [])


def wheel_metadata(path: Path) -> str:
    with zipfile.ZipFile(path) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        return wheel.read(name).decode()


class InstalledWheelTests(TestCase):
    """The wheel in a fresh virtualenv, run from another folder."""

    timeout = 600

    def config_file(self, port):
        folder = FilePath(self.mktemp())
        folder.makedirs()
        path = folder.child("gocast.vibe")
        path.setContent(('server { listen 127.0.0.1 port %d data_dir "%s" shutdown_timeout 1s }\n'
                         'mounts { live { } }\n' % (port, folder.child("data").path)).encode())
        return path.path

    def start(self, built, argv, env=None):
        process = ServerProcess.spawn(reactor, [str(built.bin(argv[0]))] + argv[1:], env=env,
                                      cwd=built.run_dir, checkout=False)
        self.addCleanup(process.stop)
        return process

    async def test_python_m_gocast_version(self):
        built = await release(self)
        process = self.start(built, ["python", "-m", "gocast", "--version"])
        self.assertEqual(await process.ended, (0, None))
        self.assertEqual(process.output.decode().strip(), "gocast %s" % __version__)

    async def test_imports_come_from_the_virtualenv(self):
        built = await release(self)
        process = self.start(built, ["python", "-c", "import gocast, twisted.plugins.gocast_plugin as p; "
                                                     "print(gocast.__file__); print(p.__file__)"])
        await process.ended
        for line in process.output.decode().split():
            self.assertTrue(line.startswith(str(built.venv)), line)

    async def twistd_ready(self, built):
        """``twistd -n gocast`` from the wheel, once /health/ready says so: ``(process, base URL)``."""
        port = free_port()
        process = self.start(built, ["twistd", "--nodaemon", "--pidfile=", "gocast", "--config",
                                     self.config_file(port)])
        base = "http://127.0.0.1:%d" % port
        response, body = await wait_for_http(reactor, base + "/health/ready", process)
        self.assertEqual((response.code, json.loads(body)["status"]), (200, "ready"))
        return process, base

    async def test_twistd_serves_dashboard_and_swagger(self):
        process, base = await self.twistd_ready(await release(self))
        response, page = await wait_for_http(reactor, base + "/admin/dashboard/", process)
        self.assertEqual(response.code, 200)
        for asset in [b"vendor/uPlot.iife.min.js", b"vendor/uPlot.min.css", b"static/dashboard.js"]:
            self.assertIn(asset, page)
            response, body = await wait_for_http(reactor, base + "/admin/dashboard/" + asset.decode(), process)
            self.assertEqual(response.code, 200, asset)
            self.assertGreater(len(body), 1000, asset)
        response, body = await wait_for_http(reactor, base + "/admin/dashboard/vendor/uPlot.iife.min.js",
                                             process)
        self.assertIn(b"uPlot", body)
        response, page = await wait_for_http(reactor, base + "/api/v1/docs/", process)
        self.assertEqual(response.code, 200)
        self.assertIn(b"swagger-ui-bundle.js", page)
        response, page = await wait_for_http(reactor, base + "/embed/live", process)
        self.assertEqual(response.code, 200)
        for asset in (b"/embed/-/player.js", b"/embed/-/player.css"):
            self.assertIn(asset, page)
        for asset in (b"player.js", b"player.css", b"embed.js", b"hls.light.min.js"):
            response, body = await wait_for_http(reactor, base + "/embed/-/" + asset.decode(), process)
            self.assertEqual(response.code, 200, asset)
            self.assertGreater(len(body), 1000, asset)
        response, body = await wait_for_http(reactor, base + "/api/v1/docs/swagger-ui-bundle.js", process)
        self.assertEqual(response.code, 200)
        self.assertGreater(len(body), 100000)

    async def test_gocast_serve(self):
        built = await release(self)
        port = free_port()
        process = self.start(built, ["gocast", "serve", "--config", self.config_file(port)])
        response, body = await wait_for_http(reactor, "http://127.0.0.1:%d/health/ready" % port, process)
        self.assertEqual(response.code, 200)

    async def test_twistd_daemon(self):
        """Daemon mode from the wheel: pid file and twistd.log in the folder it starts in."""
        built = await release(self)
        port = free_port()
        run_dir = FilePath(self.mktemp())
        run_dir.makedirs()
        launcher = ServerProcess.spawn(reactor, [str(built.bin("twistd")), "--pidfile", "gocast.pid", "gocast",
                                                 "--config", self.config_file(port)],
                                       cwd=run_dir.path, checkout=False)
        self.assertEqual(await launcher.ended, (0, None), launcher.output.decode())
        pidfile = run_dir.child("gocast.pid")
        await eventually(reactor, pidfile.exists, what="the pid file")
        pid = int(pidfile.getContent())
        self.addCleanup(stop_pid, pid)
        await eventually(reactor, lambda: b"GoCast" in run_dir.child("twistd.log").getContent()
                         if run_dir.child("twistd.log").exists() else False, what="twistd.log")
        await stop_pid(pid)
        self.assertIn(b"Server Shut Down.", run_dir.child("twistd.log").getContent())

    async def test_container_commands(self):
        """
        The Dockerfile's CMD and HEALTHCHECK, as they are written there, run
        against the wheel with the container's config (on loopback and a
        free port here, where the image listens on 0.0.0.0:8000).
        """
        built = await release(self)
        port = free_port()
        folder = FilePath(self.mktemp())
        folder.makedirs()
        container_config = (ROOT / "contrib" / "docker" / "gocast.vibe").read_text()
        self.assertIn("listen 0.0.0.0\n  port 8000\n", container_config)
        self.assertIn("data_dir /var/lib/gocast\n", container_config)
        config = folder.child("gocast.vibe")
        config.setContent(container_config.replace("listen 0.0.0.0\n  port 8000\n",
                                                   "listen 127.0.0.1\n  port %d\n" % port)
                          .replace("/var/lib/gocast", folder.child("data").path).encode())
        # In the image, the lookup finds /etc/gocast/gocast.vibe; here $GOCAST_CONFIG names the copy.
        process = self.start(built, exec_form(last("CMD")), env={"GOCAST_CONFIG": config.path})
        await wait_for_http(reactor, "http://127.0.0.1:%d/health/live" % port, process)
        check = [part.replace("127.0.0.1:8000", "127.0.0.1:%d" % port) for part in healthcheck_command()]
        self.assertNotEqual(check, healthcheck_command())
        probe = self.start(built, check)
        self.assertEqual(await probe.ended, (0, None), probe.output.decode())
        await process.stop()
        probe = self.start(built, check)
        code, _ = await probe.ended
        self.assertNotEqual(code, 0)  # the probe fails once nothing answers

    async def test_dashboard_draws_its_charts(self):
        """The dashboard served from the wheel, in headless Chromium: uPlot loads and draws."""
        _, base = await self.twistd_ready(await release(self))
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        await threads.deferToThread(log_in, driver, base)
        charts = await threads.deferToThread(wait_for_charts, driver)
        self.assertGreaterEqual(charts, 1)


def wait_for_charts(driver, timeout=15):
    """How many uPlot canvases the page drew (waiting up to ``timeout`` seconds for one)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        drawn = driver.execute_script(
            "return typeof uPlot === 'function' ? document.querySelectorAll('.uplot canvas').length : -1")
        if drawn > 0 or time.monotonic() > deadline:
            if drawn < 0:
                raise AssertionError("uPlot did not load: %s" % driver.find_element("id", "rates-chart").text)
            return drawn
        time.sleep(0.1)
