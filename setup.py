from setuptools import find_packages, setup

version = {}
with open("gocast/_version.py") as f:
    exec(f.read(), version)

setup(
    name="gocast",
    version=version["__version__"],
    description="Icecast-compatible internet radio server on Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/gocast_plugin.py"], "gocast.dashboard": ["static/*"]},
    install_requires=[
        "Twisted>=25.5",  # Site(parsePOSTFormSubmission=...)
        "attrs>=23.1",
        "autobahn[twisted]>=23.1",
        "bcrypt>=4.1",
        "maxminddb>=2.5",
        "PyJWT[crypto]>=2.8",
        "prometheus-client>=0.17",
        "pyOpenSSL>=23.2",
        "service-identity>=23.1",
        "swagger-ui-bundle>=1.1",
        "treq>=23.11",
    ],
    extras_require={
        "test": [
            "hypothesis>=6.100",
            "maxminddb-geolite2>=2018.703",
            "selenium>=4.20",
            "openapi-spec-validator>=0.7",
            "schemathesis>=3.30",
        ],
    },
    entry_points={"console_scripts": ["gocast = gocast.cli:main"]},
)
