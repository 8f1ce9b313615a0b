"""
Debian's icecast2, started on a free loopback port for interoperability
tests and stopped by PID.
"""

import os
import shutil
import tempfile
from xml.etree import ElementTree

import treq
from twisted.internet import defer, task
from twisted.python.filepath import FilePath

from ._process import ServerProcess, free_port, tool, wait_for_http

PASSWORD = "hackme"
RELAY_PASSWORD = "relaypw"

CONFIG = """<icecast>
  <limits><clients>100</clients><sources>10</sources><source-timeout>10</source-timeout>
    <burst-size>65536</burst-size></limits>
  <authentication><source-password>%(password)s</source-password>
    <relay-user>relay</relay-user><relay-password>%(relay_password)s</relay-password>
    <admin-user>admin</admin-user><admin-password>%(password)s</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>%(port)d</port><bind-address>127.0.0.1</bind-address></listen-socket>
  %(extra)s
  <paths><basedir>/usr/share/icecast2</basedir><logdir>%(logs)s</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>%(owner)s</security>
</icecast>
"""


@defer.inlineCallbacks
def start_icecast(testcase, reactor, extra=""):
    """
    Run icecast2 with ``extra`` XML inside ``<icecast>`` (relays, a master
    server). As root it drops to nobody, who must read its config and write
    its logs.

    :return: ``(process, base_url, log folder)``
    """
    # Not under trial's folder, whose parents nobody may not enter.
    folder = FilePath(tempfile.mkdtemp(prefix="gocast-icecast-"))
    testcase.addCleanup(shutil.rmtree, folder.path, True)
    logs = folder.child("logs")
    logs.makedirs()
    os.chmod(folder.path, 0o755)
    os.chmod(logs.path, 0o777)
    port = free_port()
    owner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>" if os.getuid() == 0 else ""
    config = folder.child("icecast.xml")
    config.setContent((CONFIG % dict(password=PASSWORD, relay_password=RELAY_PASSWORD, port=port, extra=extra,
                                     logs=logs.path, owner=owner)).encode())
    os.chmod(config.path, 0o644)
    process = ServerProcess.spawn(reactor, [tool("icecast2"), "-c", config.path], checkout=False)
    testcase.addCleanup(process.stop)
    base = "http://127.0.0.1:%d" % port
    yield wait_for_http(reactor, base + "/status-json.xsl", process)
    return process, base, logs


@defer.inlineCallbacks
def icecast_mounts(reactor, base, process):
    """
    The mounts Icecast lists with a source, from its admin XML
    (/status-json.xsl is not always valid JSON in Icecast 2.4).
    """
    response = yield treq.get(base + "/admin/listmounts", auth=("admin", PASSWORD), reactor=reactor,
                              persistent=False, timeout=5)
    body = yield treq.content(response)
    if process.ended.called:
        raise AssertionError("Icecast exited:\n%s" % process.output.decode(errors="replace"))
    return sorted(source.get("mount") for source in ElementTree.fromstring(body).iter("source"))


@defer.inlineCallbacks
def wait_for_icecast_mount(reactor, base, process, mount, timeout=30.0):
    deadline = reactor.seconds() + timeout
    while True:
        mounts = yield icecast_mounts(reactor, base, process)
        if mount in mounts:
            return
        if reactor.seconds() > deadline:
            raise AssertionError("Icecast has no source on %s (it has %s)" % (mount, mounts))
        yield task.deferLater(reactor, 0.2, lambda: None)
