"""
Packaging beyond pyproject.toml: which packages ship (GoCast's, and its
``twistd`` plugin in ``twisted/plugins``, which must not become a package
of its own), their data files, and a build step for the browser libraries
GoCast serves.

uPlot (the dashboard's charts, ``gocast/dashboard/package.json``) and
hls.js (the embeddable player's HLS, ``gocast/player/package.json``) come
from the npm registry and are never committed: ``build_assets`` runs
``npm ci`` when needed and copies the files the pages load into each
one's ``vendor/`` folder, which the wheel and the sdist then carry (so
building a wheel from the sdist needs no npm).
"""

import os
import shutil
import subprocess

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
#: (npm project folder, package, {file in the package: name in the project's vendor/ folder}).
ASSETS = [
    (os.path.join(HERE, "gocast", "dashboard"), "uplot",
     {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css",
      "LICENSE": "uPlot.LICENSE"}),
    (os.path.join(HERE, "gocast", "player"), "hls.js",
     {"dist/hls.light.min.js": "hls.light.min.js", "LICENSE": "hls.js.LICENSE"}),
]


class build_assets(Command):
    description = "copy the browser libraries GoCast serves from npm into each page's vendor/ folder"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        for project, package, files in ASSETS:
            self.copy(project, package, files)

    def copy(self, project, package, files):
        lock = os.path.join(project, "package-lock.json")
        vendor = os.path.join(project, "vendor")
        targets = [os.path.join(vendor, name) for name in files.values()]
        if not os.path.exists(lock):
            # Building from an sdist: it carries the copied files, not the npm project.
            missing = [t for t in targets if not os.path.exists(t)]
            if missing:
                raise SystemExit("build_assets: %s missing and no package-lock.json to fetch it" % missing[0])
            return
        if all(os.path.exists(t) and os.path.getmtime(t) >= os.path.getmtime(lock) for t in targets):
            return
        source = os.path.join(project, "node_modules", package)
        if not os.path.isdir(source) or os.path.getmtime(source) < os.path.getmtime(lock):
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit("build_assets: npm is needed to build GoCast (the dashboard's charts and the "
                                 "player's HLS come from the npm registry); install Node.js and npm, "
                                 "e.g. apt-get install npm")
            subprocess.check_call([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=project)
        os.makedirs(vendor, exist_ok=True)
        for name, target in files.items():
            shutil.copyfile(os.path.join(source, name), os.path.join(vendor, target))


class build_py_with_assets(build_py):
    def run(self):
        self.run_command("build_assets")
        super().run()


class sdist_with_assets(sdist):
    def run(self):
        self.run_command("build_assets")
        super().run()


setup(
    packages=find_packages(include=["gocast", "gocast.*"]) + ["twisted.plugins"],
    package_data={
        "twisted": ["plugins/gocast_plugin.py"],
        "gocast.dashboard": ["static/*", "vendor/*"],
        "gocast.player": ["static/*", "vendor/*"],
    },
    include_package_data=False,  # package_data above says exactly what ships; MANIFEST.in is for the sdist
    cmdclass={"build_assets": build_assets, "build_py": build_py_with_assets, "sdist": sdist_with_assets},
)
