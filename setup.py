"""
Packaging beyond pyproject.toml: which packages ship (GoCast's, and its
``twistd`` plugin in ``twisted/plugins``, which must not become a package
of its own), their data files, and a build step for the dashboard's chart
library.

uPlot comes from the npm registry (``gocast/dashboard/package.json``) and is
never committed: ``build_assets`` runs ``npm ci`` when needed and copies
the two files the page loads into ``gocast/dashboard/vendor/``, which the
wheel and the sdist then carry (so building a wheel from the sdist needs
no npm).
"""

import os
import shutil
import subprocess

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
DASHBOARD = os.path.join(HERE, "gocast", "dashboard")
VENDOR = os.path.join(DASHBOARD, "vendor")
#: The files the dashboard page loads, from uPlot's dist folder, and its licence.
UPLOT_FILES = {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css",
               "LICENSE": "uPlot.LICENSE"}


class build_assets(Command):
    description = "copy the dashboard's uPlot from npm into gocast/dashboard/vendor"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        lock = os.path.join(DASHBOARD, "package-lock.json")
        targets = [os.path.join(VENDOR, name) for name in UPLOT_FILES.values()]
        if not os.path.exists(lock):
            # Building from an sdist: it carries the copied files, not the npm project.
            missing = [t for t in targets if not os.path.exists(t)]
            if missing:
                raise SystemExit("build_assets: %s missing and no package-lock.json to fetch it" % missing[0])
            return
        if all(os.path.exists(t) and os.path.getmtime(t) >= os.path.getmtime(lock) for t in targets):
            return
        source = os.path.join(DASHBOARD, "node_modules", "uplot")
        if not os.path.isdir(source) or os.path.getmtime(source) < os.path.getmtime(lock):
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit("build_assets: npm is needed to build GoCast (the dashboard's charts come from "
                                 "the npm registry); install Node.js and npm, e.g. apt-get install npm")
            subprocess.check_call([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DASHBOARD)
        os.makedirs(VENDOR, exist_ok=True)
        for name, target in UPLOT_FILES.items():
            shutil.copyfile(os.path.join(source, name), os.path.join(VENDOR, target))


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
    },
    include_package_data=False,  # package_data above says exactly what ships; MANIFEST.in is for the sdist
    cmdclass={"build_assets": build_assets, "build_py": build_py_with_assets, "sdist": sdist_with_assets},
)
