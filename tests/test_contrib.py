"""
The files operators install from contrib/ (systemd units, logrotate) and
the container files say what GoCast does: they are checked against it here.
"""

import configparser
import json
import shlex

import yaml
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import find_config, parse_config

from .containers import ROOT, exec_form, healthcheck_command, instructions, last


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((ROOT / "contrib" / name).read_text())
    return parser


class SystemdUnitTests(SynchronousTestCase):
    def test_service(self):
        service = unit("gocast.service")["Service"]
        self.assertEqual(service["Type"], "notify")  # gocast._systemd sends READY=1
        self.assertEqual(service["RestartPreventExitStatus"], "78")  # gocast.tap.EX_CONFIG
        self.assertEqual((service["StateDirectory"], service["LogsDirectory"], service["ConfigurationDirectory"]),
                         ("gocast", "gocast", "gocast"))
        self.assertEqual(service["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(service["UMask"], "0077")
        argv = shlex.split(service["ExecStart"])
        self.assertTrue(argv[0].endswith("/twistd"))
        self.assertEqual(argv[1:], ["--nodaemon", "--pidfile=", "gocast"])
        # With no --config, the lookup reaches the ConfigurationDirectory's file.
        choice = find_config(None, {}, exists=lambda path: path == "/etc/gocast/gocast.vibe")
        self.assertEqual(choice.path, "/etc/gocast/gocast.vibe")

    def test_socket_matches_its_endpoint(self):
        socket_unit = unit("gocast.socket")
        text = (ROOT / "contrib" / "gocast.socket").read_text()
        name = socket_unit["Socket"]["FileDescriptorName"]
        endpoint = "systemd:domain=INET6:name=%s" % name
        self.assertIn('endpoints ["%s"]' % endpoint, text)
        self.assertEqual(parse_config('server { endpoints ["%s"] }' % endpoint).config.server.endpoints,
                         (endpoint,))
        self.assertEqual(socket_unit["Socket"]["Service"], "gocast.service")


class DockerfileTests(SynchronousTestCase):
    def setUp(self):
        self.steps = instructions()
        self.final = self.steps[max(i for i, (name, _) in enumerate(self.steps) if name == "FROM"):]

    def arguments(self, keyword, steps=None):
        return [arguments for name, arguments in (steps or self.steps) if name == keyword]

    def test_debian_slim_images(self):
        for image in self.arguments("FROM"):
            self.assertRegex(image.split()[0], r"^python:3\.1[1-9]-slim-bookworm$")

    def test_files_it_copies_exist(self):
        for arguments in self.arguments("COPY"):
            if arguments.startswith("--from="):
                continue
            *sources, _ = arguments.split()
            for source in sources:
                self.assertTrue((ROOT / source).exists(), source)
        ignored = (ROOT / ".dockerignore").read_text().split()
        for needed in ("setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md", "gocast", "twisted"):
            self.assertNotIn(needed, ignored)

    def test_final_image(self):
        self.assertIn("ffmpeg", " ".join(self.arguments("RUN", self.final)))
        self.assertIn(".whl", " ".join(self.arguments("RUN", self.final)))
        self.assertEqual(self.arguments("USER", self.final), ["gocast"])
        self.assertEqual(self.arguments("VOLUME", self.final), ["/var/lib/gocast"])
        self.assertIn("contrib/docker/gocast.vibe /etc/gocast/gocast.vibe", self.arguments("COPY", self.final))
        self.assertEqual(exec_form(last("CMD")), ["twistd", "--nodaemon", "--pidfile=", "gocast"])
        self.assertIn("http://127.0.0.1:8000/health/live", " ".join(healthcheck_command()))

    def test_container_config(self):
        config = parse_config((ROOT / "contrib" / "docker" / "gocast.vibe").read_text()).config
        self.assertEqual((config.server.listen, config.server.port), ("0.0.0.0", 8000))
        self.assertEqual(config.server.data_dir, last("VOLUME"))
        exposed = last("EXPOSE").split()
        self.assertEqual(exposed, [str(config.server.port), str(config.server.port + 1)])


class ComposeTests(SynchronousTestCase):
    def setUp(self):
        self.compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        self.services = self.compose["services"]

    def test_services_and_the_files_they_mount(self):
        self.assertEqual(set(self.services), {"gocast", "redis", "prometheus", "grafana"})
        self.assertEqual(self.services["gocast"]["build"], ".")
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    self.assertTrue((ROOT / source).exists(), "%s mounts %s" % (name, source))
                else:
                    self.assertIn(source, self.compose["volumes"])

    def test_gocast_config_and_data(self):
        mounts = dict(v.split(":")[1::-1] for v in self.services["gocast"]["volumes"])
        self.assertEqual(mounts["/etc/gocast/gocast.vibe"], "./contrib/docker/gocast.vibe")
        self.assertEqual(mounts["/var/lib/gocast"], "gocast-data")

    def test_prometheus_scrapes_gocast(self):
        mounted = self.services["prometheus"]["volumes"][0].split(":")[0]
        prometheus = yaml.safe_load((ROOT / mounted).read_text())
        [job] = prometheus["scrape_configs"]
        config = parse_config((ROOT / "contrib" / "docker" / "gocast.vibe").read_text()).config
        self.assertEqual(job["metrics_path"], config.metrics.path)
        self.assertEqual(job["static_configs"][0]["targets"], ["gocast:%d" % config.server.port])

    def test_grafana_provisioning(self):
        volumes = dict(v.split(":")[1::-1] for v in self.services["grafana"]["volumes"])
        provisioning = ROOT / volumes["/etc/grafana/provisioning"]
        [datasource] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
        self.assertEqual((datasource["type"], datasource["url"]), ("prometheus", "http://prometheus:9090"))
        [provider] = yaml.safe_load((provisioning / "dashboards" / "gocast.yml").read_text())["providers"]
        dashboard_path = [path for path in volumes if path.startswith(provider["options"]["path"] + "/")]
        self.assertEqual(len(dashboard_path), 1)
        dashboard = json.loads((ROOT / volumes[dashboard_path[0]]).read_text())
        self.assertEqual(dashboard["uid"], "gocast")
        self.assertTrue(dashboard["panels"])
